import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from deai.learn.data import Dataset, Standardizer, load_dataset, prepare, split_dataset, standardize
from deai.learn.errors import DataError


@pytest.mark.parametrize(
    ("name", "n", "classes", "features"),
    [
        ("digits", 1797, 10, 64),
        ("wine", 178, 3, 13),
        ("breast_cancer", 569, 2, 30),
    ],
)
def test_builtin_datasets(name, n, classes, features):
    ds = load_dataset(name)
    assert len(ds) == n and ds.num_classes == classes and ds.in_features == features
    assert ds.x.dtype == torch.float32 and ds.y.dtype == torch.int64
    assert set(ds.y.tolist()) == set(range(classes))
    if name == "digits":
        assert ds.feature_shape == (1, 8, 8)


def _frame(rng, n=40):
    return pd.DataFrame(
        {"a": rng.normal(size=n), "b": rng.integers(0, 5, n), "target": rng.choice(["cat", "dog", "eel"], n)}
    )


def test_csv_and_parquet_loaders(tmp_path):
    rng = np.random.default_rng(0)
    df = _frame(rng)
    df.to_csv(tmp_path / "t.csv", index=False)
    df.to_parquet(tmp_path / "t.parquet")
    for spec in (f"csv:{tmp_path / 't.csv'}", f"parquet:{tmp_path / 't.parquet'}"):
        ds = load_dataset(spec, label="target")
        assert len(ds) == 40 and ds.in_features == 2 and ds.num_classes == 3
        assert ds.classes == ("cat", "dog", "eel")
        assert torch.allclose(ds.x[:, 0], torch.tensor(df["a"].to_numpy(), dtype=torch.float32))
        assert [ds.classes[i] for i in ds.y.tolist()] == df["target"].tolist()
    with pytest.raises(DataError, match="no label column 'label'"):
        load_dataset(f"csv:{tmp_path / 't.csv'}")
    df2 = df.assign(c=["x"] * 40)
    df2.to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(DataError, match="non-numeric feature columns"):
        load_dataset(f"csv:{tmp_path / 'bad.csv'}", label="target")
    df.assign(a=np.nan).to_csv(tmp_path / "nan.csv", index=False)
    with pytest.raises(DataError, match="missing values"):
        load_dataset(f"csv:{tmp_path / 'nan.csv'}", label="target")


def test_npz_loader_never_unpickles(tmp_path):
    x = np.random.default_rng(1).normal(size=(30, 2, 3)).astype(np.float32)
    y = np.arange(30) % 3
    np.savez(tmp_path / "d.npz", x=x, label=y)
    ds = load_dataset(f"npz:{tmp_path / 'd.npz'}")
    assert ds.feature_shape == (2, 3) and ds.in_features == 6
    assert torch.equal(ds.x, torch.from_numpy(x.reshape(30, 6)))
    np.savez(tmp_path / "obj.npz", x=np.array([{"a": 1}] * 3, dtype=object), y=np.arange(3))
    with pytest.raises(ValueError, match="pickle"):
        load_dataset(f"npz:{tmp_path / 'obj.npz'}")
    np.savez(tmp_path / "nox.npz", features_wrong=x, y=y)
    with pytest.raises(DataError, match="needs arrays"):
        load_dataset(f"npz:{tmp_path / 'nox.npz'}")


def test_image_folder_loader(tmp_path):
    rng = np.random.default_rng(2)
    for cls, count in (("circle", 3), ("square", 4)):
        (tmp_path / cls).mkdir()
        for i in range(count):
            arr = rng.integers(0, 256, (6, 5), dtype=np.uint8)
            Image.fromarray(arr, mode="L").save(tmp_path / cls / f"{i}.png")
    (tmp_path / "circle" / "notes.txt").write_text("ignored")
    ds = load_dataset(f"images:{tmp_path}")
    assert len(ds) == 7 and ds.num_classes == 2 and ds.feature_shape == (1, 6, 5)
    assert ds.classes == ("circle", "square") and ds.y.tolist() == [0, 0, 0, 1, 1, 1, 1]
    assert float(ds.x.min()) >= 0 and float(ds.x.max()) <= 1
    first = np.asarray(Image.open(tmp_path / "circle" / "0.png"), dtype=np.float32) / 255
    assert torch.allclose(ds.x[0], torch.from_numpy(first.reshape(-1)))
    (tmp_path / "square" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match="not a readable image"):
        load_dataset(f"images:{tmp_path}")


def test_bad_specs():
    with pytest.raises(DataError, match="unknown dataset"):
        load_dataset("mnist")
    with pytest.raises(DataError, match="does not exist"):
        load_dataset("csv:/nonexistent/file.csv")


def test_dataset_validation():
    with pytest.raises(DataError, match="labels outside"):
        Dataset(torch.zeros(2, 3), torch.tensor([0, 5]), 2, (3,))
    with pytest.raises(DataError, match="NaN"):
        Dataset(torch.tensor([[float("nan")]]), torch.tensor([0]), 2, (1,))


def test_split_is_stratified_disjoint_and_seeded():
    ds = load_dataset("digits")
    a, b = split_dataset(ds, 0.1, 0.2, seed=3), split_dataset(ds, 0.1, 0.2, seed=3)
    assert torch.equal(a.train.x, b.train.x) and torch.equal(a.test.y, b.test.y)
    assert len(a.train) + len(a.val) + len(a.test) == len(ds)
    counts = torch.bincount(ds.y)
    assert torch.all((torch.bincount(a.test.y) - 0.2 * counts).abs() <= 1)
    # Disjoint and complete: the multiset of rows is preserved.
    rows = torch.cat([a.train.x, a.val.x, a.test.x])
    assert torch.equal(torch.sort(rows.sum(1)).values, torch.sort(ds.x.sum(1)).values)
    c = split_dataset(ds, 0.1, 0.2, seed=4)
    assert not torch.equal(a.train.y, c.train.y)
    with pytest.raises(DataError, match="fractions"):
        split_dataset(ds, 0.5, 0.5)


def test_standardize_fits_on_train_only():
    s = prepare("wine", seed=0, scale=False)
    tr, te = standardize(s.train, s.test)
    assert torch.allclose(tr.x.mean(0), torch.zeros(13), atol=1e-5)
    assert torch.allclose(tr.x.std(0, correction=0), torch.ones(13), atol=1e-4)
    st = Standardizer.fit(s.train)
    assert torch.allclose(te.x, (s.test.x - st.mean) / st.std)
    digits = prepare("digits", seed=0)
    assert bool(torch.isfinite(digits.train.x).all())  # constant pixels keep std 1
