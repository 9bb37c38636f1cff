"""Balancers: loss-weighting and gradient methods (survey §3), selectable by name.

``BALANCERS["pcgrad"]`` gives the class; ``make_balancer("pcgrad", on="z")`` an instance.
"""
from __future__ import annotations

from ..registry import Registry
from .base import Balancer, GradientBalancer, StepInfo, WeightingBalancer
from .fixed import EqualWeighting, FixedWeighting

BALANCERS: Registry[type[Balancer]] = Registry("balancer")
for _cls in (EqualWeighting, FixedWeighting):
    BALANCERS.add(_cls.name, _cls)


def make_balancer(name: str | Balancer, **kwargs) -> Balancer:
    """An instance of the balancer registered as ``name`` (a Balancer is returned as is)."""
    if isinstance(name, Balancer):
        if kwargs:
            raise TypeError("keyword arguments are only accepted with a balancer name")
        return name
    return BALANCERS[name](**kwargs)


__all__ = ["BALANCERS", "Balancer", "EqualWeighting", "FixedWeighting", "GradientBalancer", "StepInfo",
           "WeightingBalancer", "make_balancer"]
