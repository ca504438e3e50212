"""When a correlation summary's SVCCA or IdCor says nothing about the pairing: plain-language caveats.

Small experiments (the shipped demo has 20 pairs of 3072-entry maps) give numbers that look strong
but are forced by the sample size, and a reader cannot tell that from the number alone:

- SVCCA: after the SVD reductions the two sets have k_a and k_b columns; centring leaves both in the
  same (n - 1)-dimensional space, so their column spaces share at least k_a + k_b - (n - 1)
  directions, and every shared direction is a canonical correlation of exactly 1, whatever the
  pairing. When that covers all min(k_a, k_b) correlations, SVCCA is 1 by construction.
- IdCor: projecting [X | Y] onto X or Y cannot raise its intrinsic dimension, and the joint set
  cannot need more than d_X + d_Y, so with exact dimensions IdCor lies in [0, 1]. TwoNN estimates at
  least as large as the number of points they came from are meaningless; a value outside [0, 1]
  (slightly below 0 happens for independent sets, METHOD §4) says the estimates are too noisy to read
  IdCor without its p-value.

The functions read the summary dict that `core.metrics.correlate.correlate` returns (and the cache
stores), so the app and the report print the same caveats.
"""

from __future__ import annotations


def forced_unit_correlations(n: int, k_a: int, k_b: int) -> int:
    """How many canonical correlations are 1 for *any* pairing: max(0, k_a + k_b - (n - 1)), at most min(k_a, k_b)."""
    return max(0, min(k_a + k_b - (n - 1), k_a, k_b))


def svcca_caveat(summary: dict) -> str | None:
    """A sentence when the sample size forces some of SVCCA's canonical correlations to 1, else None."""
    n, k_a, k_b = summary.get("n"), summary.get("svcca_k_a"), summary.get("svcca_k_b")
    if summary.get("svcca") is None or n is None or k_a is None or k_b is None or min(k_a, k_b) == 0:
        return None
    forced = forced_unit_correlations(n, k_a, k_b)
    if forced == 0:
        return None
    k = min(k_a, k_b)
    if forced == k:
        return (f"SVCCA is 1 by construction here: with {n} pairs, all {k} of its canonical correlations are 1 "
                "for any pairing of these maps.")
    return (f"SVCCA is inflated by the sample size: with {n} pairs, {forced} of its {k} canonical correlations "
            f"are 1 for any pairing (it cannot fall below {forced / k:.2f}).")


def idcor_caveat(summary: dict) -> str | None:
    """A sentence when the intrinsic-dimension estimates behind IdCor are unreliable at this N, else None."""
    n, value = summary.get("n"), summary.get("idcor")
    ids = [summary.get(key) for key in ("id_a", "id_b", "id_joint")]
    if n is None or value is None or any(d is None for d in ids):
        return None
    id_a, id_b, id_joint = ids
    if max(ids) >= n:
        return (f"IdCor is not meaningful here: TwoNN estimated dimensions of {id_a:.0f}, {id_b:.0f} and {id_joint:.0f} "
                f"(joint) from {n} points; an intrinsic dimension needs many more points than it has dimensions.")
    if not 0 <= value <= 1:
        return (f"IdCor is {value:.2f}, outside [0, 1]: the joint dimension {id_joint:.1f} is not between the larger "
                f"part's ({max(id_a, id_b):.1f}) and their sum ({id_a + id_b:.1f}), as exact dimensions would be, so "
                f"at N = {n} the estimates are too noisy to read IdCor alone; its p-value is the number to read.")
    return None


def svcca_interval_caveat(summary: dict) -> str | None:
    """A sentence when SVCCA's half-sampling interval comes from subsamples with forced unit correlations."""
    m, k_a, k_b = summary.get("bootstrap_subsample"), summary.get("svcca_k_a"), summary.get("svcca_k_b")
    if summary.get("svcca_ci") is None or m is None or k_a is None or k_b is None or min(k_a, k_b) == 0:
        return None
    forced = forced_unit_correlations(m, k_a, k_b)
    if forced == 0:
        return None
    return (f"SVCCA's interval is too narrow: each subsample has {m} pairs, so about {forced} of its "
            f"{min(k_a, k_b)} canonical correlations are 1 for any pairing, and its spread understates the "
            "full set's.")


def correlation_caveats(summary: dict) -> list[str]:
    """Every caveat that applies to one correlation summary (empty when its numbers can be read as they are)."""
    texts = (svcca_caveat(summary), svcca_interval_caveat(summary), idcor_caveat(summary))
    return [text for text in texts if text]
