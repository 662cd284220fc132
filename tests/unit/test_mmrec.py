"""MMRec loading: the shared real data sets, and one-line DataErrors for each kind of bad input."""
from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest

from magnet.data import Dataset, load_dataset, load_mmrec
from magnet.errors import DataError
from tests.hostile import (HEADER, N_ITEMS, N_USERS, Evil, assert_one_line, assert_refused, base_rows,
                           data_line, garbage, link_to, make_dataset, make_fifo, npz_bytes, rows_with,
                           set_feature, truncate, unreadable, with_value, write_inter)

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
ML100K = SHARED / "ml100k"
BABY = SHARED / "baby-interactions"
HEADER_LINE = "itemID\tuserID\trating\ttimestamp\tx_label\n"


@pytest.mark.skipif(not (ML100K / "ml100k.inter").is_file(), reason="shared ml100k data absent")
def test_ml100k_loads() -> None:
    data = load_mmrec(ML100K)
    assert isinstance(data, Dataset)
    assert data.name == "ml100k" and data.root == ML100K.resolve()
    assert (data.n_users, data.n_items) == (943, 1682)
    n = len(data.train) + len(data.valid) + len(data.test)
    assert n <= 100_000 and n > 99_000  # 100,000 minus rows of users without train (none here)
    for split in (data.train, data.valid, data.test):
        assert split.dtype == np.int64 and split.ndim == 2 and split.shape[1] == 2
    assert data.image_feat.shape == (1682, 1280) and data.image_feat.dtype == np.float32
    assert data.text_feat.shape == (1682, 384) and data.text_feat.dtype == np.float32
    assert data.image_path(0) is not None and data.image_path(0).is_file()
    assert data.item_title(0).strip() and data.item_title(0) != "item 0"
    assert data.item_popularity().shape == (1682,) and data.item_popularity().sum() == len(data.train)
    hist = data.user_history(0)
    assert set(hist.tolist()) == set(data.train[data.train[:, 0] == 0, 1].tolist())
    assert not data.synthetic_features and data.planted is None
    assert load_mmrec(ML100K).fingerprint == data.fingerprint
    assert load_dataset(str(ML100K)).fingerprint == data.fingerprint


@pytest.mark.skipif(not (BABY / "baby.inter").is_file(), reason="shared baby data absent")
def test_baby_interactions_loads_without_features() -> None:
    data = load_mmrec(BABY, require_features=False)
    assert (data.n_users, data.n_items) == (19_445, 7_050)
    assert (len(data.train), len(data.valid), len(data.test)) == (119_674, 20_559, 20_559)
    assert data.image_feat is None and data.text_feat is None
    with pytest.raises(DataError, match="image_feat.npy"):
        load_mmrec(BABY)


# --- bad input ---------------------------------------------------------------------------

def _rows(n_users: int = 4, n_items: int = 6) -> list[tuple[int, int, int]]:
    """(item, user, x_label): every user has 3 train, 1 valid, 1 test; items 0..n_items-1 used."""
    rows = []
    for u in range(n_users):
        items = [(u + k) % n_items for k in range(5)]
        for k, i in enumerate(items):
            rows.append((i, u, 0 if k < 3 else (1 if k == 3 else 2)))
    return rows


def _write(root: Path, rows: list[tuple], header: str = HEADER_LINE, n_feat_rows: int = 6,
           image: np.ndarray | None = None, text: bool = True) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    lines = [header] + ["\t".join([str(r[0]), str(r[1]), "1", "0", *map(str, r[2:])]) + "\n"
                        for r in rows]
    (root / "toy.inter").write_text("".join(lines))
    feat = np.random.default_rng(0).random((n_feat_rows, 4)).astype(np.float32)
    np.save(root / "image_feat.npy", feat if image is None else image)
    if text:
        np.save(root / "text_feat.npy", feat)
    return root


def _error(root: Path, **kwargs) -> str:
    with pytest.raises(DataError) as info:
        load_mmrec(root, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_valid_toy_loads(tmp_path: Path) -> None:
    data = load_mmrec(_write(tmp_path / "ok", _rows()))
    assert (data.n_users, data.n_items, len(data.train), len(data.valid), len(data.test)) == (4, 6, 12, 4, 4)
    assert data.name == "toy" and data.item_title(2) == "item 2" and data.image_path(0) is None


def test_column_order_by_header(tmp_path: Path) -> None:
    root = tmp_path / "reordered"
    root.mkdir()
    lines = ["userID\tx_label\titemID\n"] + [f"{u}\t{x}\t{i}\n" for i, u, x in _rows()]
    (root / "toy.inter").write_text("".join(lines))
    data = load_mmrec(root, require_features=False)
    assert (data.n_users, data.n_items, len(data.train)) == (4, 6, 12)


def test_missing_directory(tmp_path: Path) -> None:
    msg = _error(tmp_path / "nope")
    assert "nope" in msg and "does not exist" in msg


def test_no_and_multiple_inter(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert "no .inter file" in _error(tmp_path / "empty")
    root = _write(tmp_path / "two", _rows())
    (root / "other.inter").write_text(HEADER_LINE)
    assert "2 .inter files" in _error(root)


def test_missing_feature_file(tmp_path: Path) -> None:
    root = _write(tmp_path / "d", _rows(), text=False)
    msg = _error(root)
    assert "text_feat.npy" in msg and "missing feature file" in msg
    assert load_mmrec(root, require_features=False).text_feat is None


def test_feature_rows_mismatch(tmp_path: Path) -> None:
    msg = _error(_write(tmp_path / "d", _rows(), n_feat_rows=5))
    assert "image_feat.npy" in msg and "(5)" in msg and "(6)" in msg


def test_non_contiguous_item_ids(tmp_path: Path) -> None:
    rows = [(7 if i == 3 else i, u, x) for i, u, x in _rows()]  # item 3 missing, max id 7
    msg = _error(_write(tmp_path / "d", rows, n_feat_rows=8))
    assert "toy.inter" in msg and "item ids are not contiguous" in msg and "id 3 is missing" in msg


def test_nan_features(tmp_path: Path) -> None:
    bad = np.ones((6, 4), dtype=np.float32)
    bad[[1, 4], 2] = np.nan
    msg = _error(_write(tmp_path / "d", _rows(), image=bad))
    assert "image_feat.npy" in msg and "2 rows contain NaN or inf" in msg


def test_non_2d_and_unreadable_features(tmp_path: Path) -> None:
    msg = _error(_write(tmp_path / "a", _rows(), image=np.ones(6, dtype=np.float32)))
    assert "image_feat.npy" in msg and "2-D" in msg
    root = _write(tmp_path / "b", _rows())
    (root / "text_feat.npy").write_bytes(b"not a numpy file")
    msg = _error(root)
    assert "text_feat.npy" in msg and "not a .npy file" in msg and "pickle" not in msg


def test_empty_test_split(tmp_path: Path) -> None:
    rows = [(i, u, 1 if x == 2 else x) for i, u, x in _rows()]  # no x_label 2 left
    msg = _error(_write(tmp_path / "d", rows))
    assert "toy.inter" in msg and "empty test split" in msg


def test_valid_only_user_is_dropped_and_can_empty_a_split(tmp_path: Path) -> None:
    rows = _rows() + [(0, 4, 1), (1, 4, 2)]  # user 4 has no training interactions
    data = load_mmrec(_write(tmp_path / "a", rows))
    assert data.n_users == 5 and 4 not in data.valid[:, 0] and 4 not in data.test[:, 0]
    rows = [r for r in _rows() if r[2] != 2] + [(0, 4, 2)]  # the only test row is user 4's
    rows += [(1, 4, 1)]
    assert "empty test split" in _error(_write(tmp_path / "b", rows))


def test_empty_train_split(tmp_path: Path) -> None:
    rows = [(i, u, 1) for i, u, _ in _rows()]
    assert "empty train split" in _error(_write(tmp_path / "d", rows))


def test_duplicate_rows(tmp_path: Path) -> None:
    rows = _rows() + [_rows()[0]]
    msg = _error(_write(tmp_path / "d", rows))
    assert "toy.inter" in msg and "duplicate (user, item)" in msg and "user 0 item 0" in msg


def test_bad_x_label(tmp_path: Path) -> None:
    rows = _rows()
    rows[2] = (rows[2][0], rows[2][1], 5)
    msg = _error(_write(tmp_path / "d", rows))
    assert "toy.inter" in msg and "x_label must be 0, 1 or 2" in msg and "found 5" in msg


def test_missing_column(tmp_path: Path) -> None:
    root = tmp_path / "d"
    root.mkdir()
    (root / "toy.inter").write_text("itemID\tuserID\trating\n0\t0\t1\n")
    msg = _error(root)
    assert "toy.inter" in msg and "missing column" in msg and "x_label" in msg


def test_non_integer_and_negative_ids(tmp_path: Path) -> None:
    rows = _rows()
    rows[0] = ("abc", rows[0][1], 0)
    msg = _error(_write(tmp_path / "a", rows))
    assert "toy.inter" in msg and "non-integer itemID 'abc'" in msg
    rows[0] = (_rows()[0][0], -1, 0)
    msg = _error(_write(tmp_path / "b", rows))
    assert "negative userID -1" in msg


def test_unknown_synthetic_preset() -> None:
    with pytest.raises(DataError, match="unknown synthetic preset"):
        load_dataset("synthetic:huge")


# ------------------------------------------------------------------------------------------
# hostile and careless directories: every corruption of a valid toy dataset
# ------------------------------------------------------------------------------------------

_ZIP = npz_bytes(a=np.ones((N_ITEMS, 6), np.float32))

DATA_CASES: list = [
    pytest.param(lambda d: write_inter(d / "toy.inter", base_rows(),
                                       HEADER.replace("userID", "userId")), "toy.inter", id="wrong-column-name"),
    pytest.param(lambda d: write_inter(d / "toy.inter", base_rows(), HEADER.replace("\t", ",")),
                 "toy.inter", id="comma-separated"),
    pytest.param(data_line(3, "2\tbob\t5\t1\t0"), "toy.inter", id="non-integer-user-id"),
    pytest.param(data_line(3, "2.5\t0\t5\t1\t0"), "toy.inter", id="fractional-item-id"),
    pytest.param(data_line(3, "2\t\t5\t1\t0"), "toy.inter", id="empty-user-id"),
    pytest.param(data_line(3, "-1\t0\t5\t1\t0"), "toy.inter", id="negative-item-id"),
    pytest.param(data_line(3, "2\t-4\t5\t1\t0"), "toy.inter", id="negative-user-id"),
    pytest.param(rows_with(lambda r: [(i if i != 2 else 7, u, x) for i, u, x in r]), "toy.inter",
                 id="non-contiguous-item-id"),
    pytest.param(rows_with(lambda r: [(i, u if u != 1 else 9, x) for i, u, x in r]), "toy.inter",
                 id="non-contiguous-user-id"),
    pytest.param(rows_with(lambda r: r + [r[0]]), "toy.inter", id="duplicate-row"),
    pytest.param(rows_with(lambda r: r + [(r[0][0], r[0][1], 2)]), "toy.inter", id="duplicate-pair-other-split"),
    pytest.param(rows_with(lambda r: [(i, u, 7 if x == 2 else x) for i, u, x in r]), "toy.inter", id="x-label-7"),
    pytest.param(rows_with(lambda r: [(i, u, 1 if x == 2 else x) for i, u, x in r]), "toy.inter",
                 id="empty-test-split"),
    pytest.param(rows_with(lambda r: [(i, u, 2 if x == 1 else x) for i, u, x in r]), "toy.inter",
                 id="empty-valid-split"),
    pytest.param(rows_with(lambda r: [(i, u, 1 if x == 0 else x) for i, u, x in r]), "toy.inter",
                 id="empty-train-split"),
    pytest.param(rows_with(lambda r: []), "toy.inter", id="header-only"),
    pytest.param(lambda d: (d / "toy.inter").write_text(""), "toy.inter", id="empty-inter-file"),
    pytest.param(lambda d: (d / "toy.inter").write_bytes(garbage(800, 5)), "toy.inter", id="inter-binary"),
    pytest.param(set_feature("image_feat.npy", lambda a: with_value(a, np.nan)), "image_feat.npy", id="nan-feature"),
    pytest.param(set_feature("text_feat.npy", lambda a: with_value(a, np.inf)), "text_feat.npy", id="inf-feature"),
    pytest.param(set_feature("image_feat.npy", lambda a: a[:-1]), "image_feat.npy", id="feature-rows-lt-items"),
    pytest.param(set_feature("text_feat.npy", lambda a: np.vstack([a, a[:1]])), "text_feat.npy",
                 id="feature-rows-gt-items"),
    pytest.param(set_feature("image_feat.npy", lambda a: a[:, 0]), "image_feat.npy", id="feature-1d"),
    pytest.param(set_feature("image_feat.npy", lambda a: a[None]), "image_feat.npy", id="feature-3d"),
    pytest.param(set_feature("text_feat.npy", lambda a: a.astype(str)), "text_feat.npy", id="feature-strings"),
    pytest.param(lambda d: (d / "text_feat.npy").unlink(), "text_feat.npy", id="missing-text-feat"),
    pytest.param(lambda d: (d / "image_feat.npy").unlink(), "image_feat.npy", id="missing-image-feat"),
    pytest.param(lambda d: (d / "image_feat.npy").write_bytes(garbage(600, 6)), "image_feat.npy",
                 id="feature-garbage-bytes"),
    pytest.param(lambda d: (d / "text_feat.npy").write_bytes(b""), "text_feat.npy", id="feature-empty-file"),
    pytest.param(lambda d: truncate(d / "image_feat.npy"), "image_feat.npy", id="feature-truncated-npy"),
    pytest.param(lambda d: shutil.copy(d / "toy.inter", d / "copy.inter"), "copy.inter", id="two-inter-files"),
    pytest.param(lambda d: (d / "toy.inter").unlink(), ".inter", id="no-inter-file"),
    pytest.param(lambda d: (d / "items.csv").write_bytes(garbage(300, 7)), "items.csv", id="items-csv-binary"),
    pytest.param(lambda d: (d / "items.csv").write_text("id,title\n0,a\n"), "items.csv",
                 id="items-csv-no-itemID"),
    pytest.param(lambda d: (d / "items.csv").write_text("itemID,title\n0,a\n0,b\n"), "items.csv",
                 id="items-csv-duplicate-id"),
    pytest.param(lambda d: (d / "features.json").write_text("{synthetic: yes"), "features.json",
                 id="features-json-invalid"),
    pytest.param(lambda d: (d / "planted_truth.npz").write_bytes(garbage(400, 8)), "planted_truth.npz",
                 id="planted-garbage"),
    # np.load sees the zip magic and raises zipfile.BadZipFile: must become a DataError
    pytest.param(lambda d: (d / "image_feat.npy").write_bytes(_ZIP[: len(_ZIP) // 2]), "image_feat.npy",
                 id="feature-truncated-zip"),
    pytest.param(lambda d: (d / "planted_truth.npz").write_bytes(_ZIP[: len(_ZIP) // 2]), "planted_truth.npz",
                 id="planted-truncated-zip"),
    # a huge id must be refused before any allocation sized by it
    pytest.param(data_line(3, f"{10 ** 15}\t0\t5\t1\t0"), "toy.inter", id="huge-item-id"),
    # special files are never opened: a FIFO blocks its reader, /dev/zero never ends
    pytest.param(lambda d: make_fifo(d / "toy.inter"), "toy.inter", id="inter-fifo"),
    pytest.param(lambda d: link_to(d / "toy.inter", "/dev/zero"), "toy.inter", id="inter-dev-zero"),
    pytest.param(lambda d: [(d / "toy.inter").unlink(), (d / "toy.inter").mkdir()], "toy.inter",
                 id="inter-is-a-directory"),
    pytest.param(lambda d: make_fifo(d / "image_feat.npy"), "image_feat.npy", id="feature-fifo"),
    pytest.param(lambda d: link_to(d / "text_feat.npy", "/dev/zero"), "text_feat.npy", id="feature-dev-zero"),
    pytest.param(lambda d: make_fifo(d / "items.csv"), "items.csv", id="items-csv-fifo"),
    pytest.param(lambda d: link_to(d / "features.json", "/dev/zero"), "features.json", id="features-json-dev-zero"),
    pytest.param(lambda d: make_fifo(d / "planted_truth.npz"), "planted_truth.npz", id="planted-fifo"),
    pytest.param(lambda d: link_to(d / "items.csv", d / "nowhere.csv"), "items.csv", id="items-csv-dangling-link"),
    # careless content, said as it is
    pytest.param(lambda d: (d / "features.json").write_text("[1, 2]"), "features.json", id="features-json-list"),
    pytest.param(lambda d: (d / "features.json").write_text('{"synthetic": "yes"}'), "features.json",
                 id="features-json-synthetic-string"),
    pytest.param(lambda d: (d / "features.json").write_text("[" * 100_000), "features.json",
                 id="features-json-deeply-nested"),
    pytest.param(set_feature("image_feat.npy", lambda a: a[:, :0]), "image_feat.npy", id="feature-zero-width"),
    pytest.param(lambda d: (d / "planted_truth.npz").write_bytes(npz_bytes(reliance=np.ones((2, 3)))),
                 "planted_truth.npz", id="planted-reliance-wrong-shape"),
]


def test_toy_dataset_is_valid(tmp_path) -> None:
    """Control: the uncorrupted toy dataset loads, so every failure below is due to its corruption."""
    data = load_mmrec(make_dataset(tmp_path / "toy"))
    assert (data.n_users, data.n_items) == (N_USERS, N_ITEMS)
    assert len(data.train) == 2 * N_USERS and len(data.valid) == len(data.test) == N_USERS
    assert data.image_feat.shape == (N_ITEMS, 6) and data.text_feat.shape == (N_ITEMS, 8)


@pytest.mark.parametrize(("corrupt", "name"), DATA_CASES)
def test_corrupt_dataset(tmp_path, corrupt, name) -> None:
    root = make_dataset(tmp_path / "toy")
    corrupt(root)
    assert_refused(load_mmrec, root, DataError, name, tmp_path)


def test_pickled_feature_file_is_refused(tmp_path) -> None:
    root = make_dataset(tmp_path / "toy")
    marker = tmp_path / "PWNED"
    np.save(root / "image_feat.npy", np.array([Evil(marker)] * N_ITEMS, dtype=object), allow_pickle=True)
    with open(root / "text_feat.npy", "wb") as fh:
        pickle.dump(Evil(marker), fh)
    with pytest.raises(DataError) as info:
        load_mmrec(root)
    assert_one_line(info.value, "image_feat.npy")
    np.save(root / "image_feat.npy", np.zeros((N_ITEMS, 6), np.float32))
    with pytest.raises(DataError) as info:
        load_mmrec(root)
    assert_one_line(info.value, "text_feat.npy")
    assert not marker.exists(), "the loader executed pickled code"


@pytest.mark.parametrize("big", [10 ** 19, 10 ** 20], ids=["uint64", "beyond-uint64"])
def test_id_beyond_int64(tmp_path, big) -> None:
    import warnings

    root = make_dataset(tmp_path / "toy")
    data_line(3, f"2\t{big}\t5\t1\t0")(root)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(DataError) as info:
            load_mmrec(root)
    assert_one_line(info.value, "toy.inter")
    assert "negative" not in str(info.value), f"misleading message: {info.value}"
    assert not caught, f"warnings leaked: {[str(w.message) for w in caught]}"


def test_dataset_path_problems(tmp_path) -> None:
    with pytest.raises(DataError) as info:
        load_mmrec(tmp_path / "nowhere")
    assert_one_line(info.value, "nowhere")
    (tmp_path / "afile.inter").write_text(HEADER + "\n")
    with pytest.raises(DataError) as info:
        load_mmrec(tmp_path / "afile.inter")
    assert_one_line(info.value, "afile.inter")


# ------------------------------------------------------------------------------------------
# misleading or silent before (issue 18, class 6): each said as it is
# ------------------------------------------------------------------------------------------
BOM = "\ufeff"


def test_bom_headers_read(tmp_path) -> None:
    """A UTF-8 byte-order mark (Excel's CSV export) before the header is not part of a column name."""
    root = make_dataset(tmp_path / "toy")
    write_inter(root / "toy.inter", base_rows(), header=BOM + HEADER)
    (root / "items.csv").write_text(BOM + "itemID,title\n" + "".join(f"{i},thing {i}\n" for i in range(N_ITEMS)),
                                    encoding="utf-8")
    data = load_mmrec(root)
    assert (data.n_users, data.n_items) == (N_USERS, N_ITEMS) and data.item_title(3) == "thing 3"


def _npy_claiming(shape: tuple[int, ...]) -> bytes:
    """A .npy header announcing ``shape`` float32, followed by 120 bytes of data."""
    header = f"{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}".encode()
    header += b" " * (63 - (10 + len(header)) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + bytes(120)


@pytest.mark.parametrize(("content", "said", "not_said"), [
    (_npy_claiming((N_ITEMS, 10 ** 10)), "header announces shape", "pickle"),
    (_npy_claiming((10 ** 12, 6)), "header announces shape", "pickle"),
    (garbage(600, 9), "no NumPy header", "pickle"),
    (npz_bytes(a=np.ones((N_ITEMS, 2))), ".npz archive", "pickle"),
    (pickle.dumps([1, 2]), "pickle", "NumPy header"),
    (b"", "empty file", "pickle"),
])
def test_feature_file_kinds_are_named(tmp_path, content, said, not_said) -> None:
    root = make_dataset(tmp_path / "toy")
    (root / "image_feat.npy").write_bytes(content)
    with pytest.raises(DataError) as info:
        load_mmrec(root)
    assert_one_line(info.value, "image_feat.npy")
    assert said in str(info.value) and not_said not in str(info.value)


def test_features_json_holding_a_list_is_said_so(tmp_path) -> None:
    root = make_dataset(tmp_path / "toy")
    (root / "features.json").write_text('["synthetic"]')
    msg = _error(root)
    assert "expected a JSON object" in msg and "not valid JSON" not in msg


def test_unreadable_directory_is_said_so(tmp_path, monkeypatch) -> None:
    root = make_dataset(tmp_path / "toy")
    with unreadable(root, monkeypatch):
        msg = _error(root)
    assert "cannot read the dataset directory" in msg and "no .inter" not in msg


def test_dropped_rows_are_counted(tmp_path) -> None:
    rows = base_rows() + [(0, N_USERS, 1), (1, N_USERS, 2), (2, N_USERS, 2)]  # a user without training rows
    root = make_dataset(tmp_path / "toy")
    write_inter(root / "toy.inter", rows)
    data = load_mmrec(root)
    assert data.dropped == {"valid": 1, "test": 2}
    assert data.notes() == [f"{data.root}: dropped 1 valid and 2 test rows of users without training rows"]
    assert load_mmrec(make_dataset(tmp_path / "clean")).notes() == []


def test_images_are_confined_to_the_dataset(tmp_path) -> None:
    root = make_dataset(tmp_path / "toy")
    (root / "images").mkdir()
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"\x89PNG secret")
    link_to(root / "images" / "0.png", secret)
    (root / "images" / "1.png").write_bytes(b"\x89PNG")
    make_fifo(root / "images" / "2.png")
    data = load_mmrec(root)
    assert data.image_path(0) is None and data.image_path(2) is None
    assert data.image_path(1) == root / "images" / "1.png"
