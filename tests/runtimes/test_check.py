"""The child-process model-file check on files that crash LightGBM; no mocks."""

from __future__ import annotations

from pathlib import Path

import pytest

from fraudgate.runtimes.check import ModelCheckFailed, check_model_file

# a one-tree model whose threshold is not a number: LightGBM logs the raw bytes (not UTF-8) and
# aborts the process parsing it
_BAD_THRESHOLD = (
    b"tree\nversion=v4\nnum_class=1\nnum_tree_per_iteration=1\nlabel_index=0\n"
    b"max_feature_idx=1\nobjective=binary sigmoid:1\nfeature_names=a b\n"
    b"feature_infos=[0:1] [0:1]\ntree_sizes=10\n\nTree=0\nnum_leaves=2\nnum_cat=0\n"
    b"split_feature=0\nsplit_gain=1\nthreshold=\xf1\xf1x\ndecision_type=2\nleft_child=-1\n"
    b"right_child=-2\nleaf_value=0.1 0.2\n\nend of trees\n"
)


def test_a_crash_with_undecodable_output_names_the_file_and_the_signal(tmp_path: Path):
    # the child's LightGBM output is not UTF-8: that must not hide the crash behind a
    # UnicodeDecodeError (it did, whenever a truncated file made LightGBM print garbage)
    model = tmp_path / "booster.txt"
    model.write_bytes(_BAD_THRESHOLD)
    with pytest.raises(ModelCheckFailed) as failed:
        check_model_file(model)
    message = str(failed.value)
    assert str(model) in message and "SIGABRT" in message
    assert "the model file is corrupt?" in message and "no conversion to double" in message


def test_an_unreadable_file_is_not_loadable(tmp_path: Path):
    missing = tmp_path / "absent.txt"
    with pytest.raises(ModelCheckFailed, match="is not loadable"):
        check_model_file(missing)
