"""mtlkit.experiments.stats: the t interval of a mean over a few seeds."""
import pytest
from scipy import stats

from mtlkit.experiments.stats import mean_interval


def test_the_interval_is_the_mean_plus_minus_t_standard_errors():
    interval = mean_interval([1.0, 2.0, 3.0])  # mean 2, std 1, n 3
    half = stats.t.ppf(0.975, 2) / 3 ** 0.5
    assert interval.mean == pytest.approx(2.0) and interval.n == 3
    assert (interval.low, interval.high) == pytest.approx((2.0 - half, 2.0 + half))
    assert half > 2 / 3 ** 0.5  # with few seeds, wider than mean ± 2 standard errors


def test_more_confidence_means_a_wider_interval_and_equal_values_none():
    values = [0.3, -0.1, 0.4, 0.2]
    narrow, wide = mean_interval(values, 0.8), mean_interval(values, 0.99)
    assert wide.low < narrow.low < narrow.high < wide.high
    assert mean_interval([0.5, 0.5]) == (0.5, 0.5, 0.5, 2)


def test_too_few_values_or_a_bad_level_are_refused():
    with pytest.raises(ValueError, match="at least 2 values"):
        mean_interval([1.0])
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        mean_interval([1.0, 2.0], level=1.0)
