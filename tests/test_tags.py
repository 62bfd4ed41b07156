"""Tag vocabulary: short-tag rule, multi-hot encoding, errors."""

import numpy as np
import pytest

from scattertag.tags import DEFAULT_VOCABULARY, GISAXS_VOCABULARY, Vocabulary, short_tag


def test_default_has_17_tags():
    assert len(DEFAULT_VOCABULARY) == 17
    assert "Horizon" not in DEFAULT_VOCABULARY and "Horizon" in GISAXS_VOCABULARY


@pytest.mark.parametrize(
    "key, tag",
    [
        ("features.main.ring: anisotropic", "ring"),
        ("sample.lattice.BCC", "BCC"),
        ("features.variations.higher orders: 3", "higher orders"),
        ("Halo", "Halo"),
    ],
)
def test_short_tag_rule(key, tag):
    assert short_tag(key) == tag


def test_tags_from_keys_in_vocabulary_order_case_insensitive():
    keys = {
        "sample.lattice.bcc": 1,
        "features.main.ring: anisotropic": 1,
        "features.variations.higher orders: 20": 1,
        "features.main.ring.symmetry: 20": 1,
    }
    assert DEFAULT_VOCABULARY.tags_from_keys(keys) == ["BCC", "Higher orders", "Ring"]


def test_encode_decode_round_trip():
    v = DEFAULT_VOCABULARY
    vec = v.encode(["ring", "Halo", "BCC"])
    assert vec.dtype == np.uint8 and vec.sum() == 3 and vec[v.index("Ring")] == 1
    assert v.decode(vec.astype(float)) == ["BCC", "Halo", "Ring"]


def test_unknown_tag_lists_allowed():
    with pytest.raises(ValueError, match="unknown tag 'Ringg'.*allowed tags: BCC"):
        DEFAULT_VOCABULARY.encode(["Ringg"])


def test_duplicate_tags_rejected():
    with pytest.raises(ValueError, match="duplicate"):
        Vocabulary(("Ring", "ring"))
