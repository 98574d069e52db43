"""Decision policy files (coordinator/decisions/policy.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from coordinator.decisions import PolicyError, load_policy, policy_from_dict
from coordinator.decisions.policy import DEFAULT_POLICIES

EXAMPLES = DEFAULT_POLICIES

MINIMAL = """
[policy]
name = "p"
version = "1"
model = "m"
max_model_age_days = 30

[score]
approve_below = 0.1
decline_at_or_above = 0.3

[limit]
by_band = { A = 1000, B = 500 }
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "policy.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("name", ["iot.toml", "farmer-credit.toml", "sme.toml"])
def test_the_shipped_example_policies_load_and_round_trip(name: str) -> None:
    policy = load_policy(EXAMPLES / name)

    again = policy_from_dict(policy.to_dict(), source="round trip")

    assert again == policy
    assert again.digest == policy.digest


def test_layout_and_comments_do_not_change_the_digest_but_a_threshold_does(
    tmp_path: Path,
) -> None:
    first = load_policy(_write(tmp_path, MINIMAL))
    spaced = load_policy(_write(tmp_path, "# a comment\n" + MINIMAL.replace(" = ", "   =   ")))
    changed = load_policy(_write(tmp_path, MINIMAL.replace("0.1", "0.11")))

    assert spaced.digest == first.digest
    assert changed.digest != first.digest


def test_fields_name_every_figure_the_rules_read(tmp_path: Path) -> None:
    text = MINIMAL + (
        '[[rules]]\nfield = "court_cases"\nop = ">"\nvalue = 0\noutcome = "refer"\n'
        'reason = "open court cases"\n'
    )

    policy = load_policy(_write(tmp_path, text))

    assert "court_cases" in policy.fields
    assert {"requested_amount", "current_limit", "previous_score"} <= set(policy.fields)


@pytest.mark.parametrize(
    ("edit", "key", "words"),
    [
        (("approve_below", "aprove_below"), "score.aprove_below", "did you mean 'approve_below'"),
        (("approve_below = 0.1", "approve_below = 0.5"), "score.approve_below", "must not exceed"),
        (("A = 1000", "Z = 1000"), "limit.by_band.Z", "not a risk band"),
        (("B = 500", "B = -5"), "limit.by_band.B", "must be > 0"),
        (('version = "1"', "version = 1"), "policy.version", "non-empty string"),
        (("max_model_age_days = 30\n", ""), "policy.max_model_age_days", "is required"),
        (
            ("decline_at_or_above = 0.3", "decline_at_or_above = 1.3"),
            "score.decline_at_or_above",
            "[0, 1]",
        ),
    ],
)
def test_a_bad_policy_names_the_file_and_the_key(
    tmp_path: Path, edit: tuple[str, str], key: str, words: str
) -> None:
    path = _write(tmp_path, MINIMAL.replace(*edit))

    with pytest.raises(PolicyError) as caught:
        load_policy(path)

    assert caught.value.key == key
    assert str(path) in str(caught.value)
    assert words in str(caught.value)


def test_a_rule_with_an_unknown_operator_or_outcome_is_refused(tmp_path: Path) -> None:
    rule = '[[rules]]\nfield = "x"\nop = "=>"\nvalue = 1\noutcome = "refer"\nreason = "r"\n'
    with pytest.raises(PolicyError, match="unknown operator"):
        load_policy(_write(tmp_path, MINIMAL + rule))
    approve = rule.replace('"=>"', '">"').replace('"refer"', '"approve"')
    with pytest.raises(PolicyError, match="'refer' or 'decline'"):
        load_policy(_write(tmp_path, MINIMAL + approve))


def test_a_file_that_is_not_toml_or_is_missing_gets_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="not valid TOML"):
        load_policy(_write(tmp_path, "[policy\nname="))
    with pytest.raises(PolicyError, match="cannot read"):
        load_policy(tmp_path / "absent.toml")
