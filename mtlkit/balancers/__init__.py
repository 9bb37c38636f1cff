"""Balancers: loss-weighting and gradient methods (survey §3), selectable by name.

``BALANCERS["pcgrad"]`` gives the class; ``make_balancer("pcgrad", on="z")`` an instance.

Loss weighting (survey §3.1): equal, fixed, uncertainty, gradnorm, dwa, dtp, gls,
rlw, famo. Gradient methods (§3.4, §3.6 and after): mgda, mgda_ub, pcgrad,
graddrop, gradvac, cagrad, imtl_g, nash_mtl, aligned_mtl, upgrad.
"""
from __future__ import annotations

from ..registry import Registry
from .aligned_mtl import AlignedMTL
from .base import Balancer, GradientBalancer, StepInfo, WeightingBalancer
from .cagrad import CAGrad
from .dtp import DynamicTaskPrioritization
from .dwa import DynamicWeightAverage
from .famo import FAMO
from .fixed import EqualWeighting, FixedWeighting
from .gls import GeometricLoss
from .graddrop import GradDrop
from .gradnorm import GradNorm
from .gradvac import GradVac
from .imtl import IMTLG
from .mgda import MGDA, MGDAUB
from .nash_mtl import NashMTL
from .pcgrad import PCGrad
from .rlw import RandomLossWeighting
from .solvers import gram
from .uncertainty import UncertaintyWeighting
from .upgrad import UPGrad

BALANCERS: Registry[type[Balancer]] = Registry("balancer")
for _cls in (EqualWeighting, FixedWeighting, UncertaintyWeighting, GradNorm, DynamicWeightAverage,
             DynamicTaskPrioritization, GeometricLoss, RandomLossWeighting, FAMO,
             MGDA, MGDAUB, PCGrad, GradDrop, GradVac, CAGrad, IMTLG, NashMTL, AlignedMTL, UPGrad):
    BALANCERS.add(_cls.name, _cls)


def make_balancer(name: str | Balancer, **kwargs) -> Balancer:
    """An instance of the balancer registered as ``name`` (a Balancer is returned as is)."""
    if isinstance(name, Balancer):
        if kwargs:
            raise TypeError("keyword arguments are only accepted with a balancer name")
        return name
    return BALANCERS[name](**kwargs)


def gradient_methods() -> list[str]:
    """Names of the registered gradient methods (they need per-task gradients)."""
    return [n for n in BALANCERS if issubclass(BALANCERS[n], GradientBalancer)]


def weighting_methods() -> list[str]:
    """Names of the registered loss-weighting methods."""
    return [n for n in BALANCERS if issubclass(BALANCERS[n], WeightingBalancer)]


__all__ = ["BALANCERS", "FAMO", "IMTLG", "MGDA", "MGDAUB", "AlignedMTL", "Balancer", "CAGrad",
           "DynamicTaskPrioritization", "DynamicWeightAverage", "EqualWeighting", "FixedWeighting",
           "GeometricLoss", "GradDrop", "GradNorm", "GradVac", "GradientBalancer", "NashMTL", "PCGrad",
           "RandomLossWeighting", "StepInfo", "UPGrad", "UncertaintyWeighting", "WeightingBalancer",
           "gradient_methods", "gram", "make_balancer", "weighting_methods"]
