"""placeholder"""
from __future__ import annotations


class HookRegistry:
    pass
