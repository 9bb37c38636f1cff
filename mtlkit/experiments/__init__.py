"""Lesson helpers: the experiments the notebooks run, built from the core.

* :mod:`~mtlkit.experiments.transfer`: notebook 01's shared-vs-separate experiment
  (:class:`TransferSetup`, :class:`SharingComparison`, :func:`transfer_sweep`), whose
  data recipe the later notebooks reuse;
* :mod:`~mtlkit.experiments.architectures`: train registered architectures by name
  on that data and look inside them (notebooks 02 and 03);
* :mod:`~mtlkit.experiments.conflict`: gradient conflict against task correlation
  over seeds, and conflict of an update on held-out batches (notebook 07);
* :mod:`~mtlkit.experiments.weighting`: loss-weighting methods compared with
  tuned learning rates on paired seeds (notebook 06);
* :mod:`~mtlkit.experiments.dense`: PAD-Net with its distillation cut, the control
  notebook 04 compares PAD-Net with;
* :mod:`~mtlkit.experiments.stats`: the mean over seeds with its t interval;
* :mod:`~mtlkit.experiments.lessons`: a notebook's claims as checks that a seed
  sweep can rerun (``scripts``: ``benchmarks/lessons.py``).

Nothing in the core (``mtlkit`` outside ``experiments`` and ``widgets``) imports
this package; the widgets may.
"""
