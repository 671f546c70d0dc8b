"""Tiny real models and data sets made in the tests, for every model source and task kind.

Everything here is built from configs and generated text/images (nothing downloaded), is
deterministic, and is small enough to build in seconds. Use it through the session-scoped
``zoo`` fixture (``tests/conftest.py``): each maker builds its directory once per session.

- Tokenizers: :func:`wordpiece_tokenizer` (BERT-style), :func:`bpe_tokenizer` (GPT-2/Llama
  style), both trained on the text they will see.
- Hugging Face model directories (``save_pretrained`` with tokenizer or image processor):
  ``gpt2``, ``llama``, ``bert`` (plain encoder), ``bert-mlm`` (tied decoder),
  ``bert-sst`` (sequence classifier, briefly fine-tuned on ``sentiment``), ``vit``
  (image classifier, briefly trained on ``shapes``).
- Data: ``sentiment`` (a text-classification data set as CSV files ``train.csv`` /
  ``test.csv`` with columns ``text``, ``label`` = ``negative``/``positive``, 10% of labels
  flipped), ``shapes``
  (an ImageFolder tree ``train/<class>/*.png``, ``test/<class>/*.png`` of 16×16 images,
  classes ``horizontal``/``vertical``), ``blobs`` (a numeric CSV: ``f0..f7``, ``label``).
- A user project (``user``): ``src/mynet.py`` defining an MLP, trained on ``blobs`` and
  pickled whole with ``torch.save`` as ``mlp.pt`` (the ``file`` source's case).
- :func:`zoo_suite`: one suite of every model source × task kind above, with int8,
  magnitude pruning and structured pruning (the shared ``zoo_bench``).
"""

from __future__ import annotations

import csv
import importlib.util
import random
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

POSITIVE = ["good", "great", "fine", "lovely", "excellent", "happy", "superb", "nice", "bright", "warm"]
NEGATIVE = ["bad", "awful", "poor", "dull", "terrible", "sad", "grim", "nasty", "cold", "weak"]
FILLER = ["the", "film", "was", "plot", "actors", "very", "quite", "and", "a", "story", "music", "ending"]
LABELS = ["negative", "positive"]
SHAPES = ["horizontal", "vertical"]


def sentences(n: int, seed: int) -> list[tuple[str, str]]:
    """``n`` (text, label) pairs: filler words plus two words of one sentiment."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        label = rng.choice(LABELS)
        words = rng.sample(FILLER, 5) + rng.sample(POSITIVE if label == "positive" else NEGATIVE, 2)
        rng.shuffle(words)
        if rng.random() < 0.1:  # label noise: accuracy stays below 1 and has a spread
            label = LABELS[1 - LABELS.index(label)]
        out.append((" ".join(words), label))
    return out


def all_text() -> list[str]:
    return [t for t, _ in sentences(400, 0)] + [" ".join(POSITIVE + NEGATIVE + FILLER)]


def wordpiece_tokenizer(texts: list[str]) -> Any:
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.train_from_iterator(texts, trainers.WordPieceTrainer(vocab_size=200, special_tokens=specials))
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]",
                                   cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")


def bpe_tokenizer(texts: list[str]) -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(texts, trainers.BpeTrainer(
        vocab_size=300, special_tokens=["<|endoftext|>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|endoftext|>",
                                   eos_token="<|endoftext|>", pad_token="<|endoftext|>")


def _bert_config(**extra: Any) -> Any:
    from transformers import BertConfig

    return BertConfig(vocab_size=200, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                      intermediate_size=64, max_position_embeddings=64, **extra)


def _train(model: Any, batches: Callable[[int], dict[str, Any]], steps: int, lr: float = 3e-3) -> None:
    import torch

    torch.manual_seed(0)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    for step in range(steps):
        loss = model(**batches(step)).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()


def make_sentiment(path: Path) -> None:
    path.mkdir(parents=True)
    for split, n, seed in (("train", 256, 1), ("test", 96, 2)):
        with open(path / f"{split}.csv", "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["text", "label"])
            writer.writerows(sentences(n, seed))


def make_shapes(path: Path) -> None:
    """Bars on noise: a horizontal or a vertical bright bar at a random place."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, n in (("train", 48), ("test", 24)):
        for label, shape in enumerate(SHAPES):
            folder = path / split / shape
            folder.mkdir(parents=True)
            for i in range(n):
                img = rng.integers(0, 80, size=(16, 16, 3))
                at = rng.integers(2, 14)
                if label == 0:
                    img[at - 1:at + 1, :, :] = 240
                else:
                    img[:, at - 1:at + 1, :] = 240
                Image.fromarray(img.astype(np.uint8)).save(folder / f"{i:03d}.png")


def make_blobs(path: Path) -> None:
    from sklearn.datasets import make_classification

    x, y = make_classification(n_samples=400, n_features=8, n_informative=5, n_classes=3, random_state=0)
    path.mkdir(parents=True)
    with open(path / "blobs.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([f"f{i}" for i in range(8)] + ["label", "split"])
        for i, (row, label) in enumerate(zip(x, y)):
            writer.writerow([f"{v:.6f}" for v in row] + [f"class{label}", "test" if i % 4 == 0 else "train"])


def make_gpt2(path: Path) -> None:
    from transformers import GPT2Config, GPT2LMHeadModel

    tok = bpe_tokenizer(all_text())
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_positions=64, n_embd=32, n_layer=2, n_head=2,
                                       bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id))
    model.save_pretrained(path)
    tok.save_pretrained(path)


def make_llama(path: Path) -> None:
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = bpe_tokenizer(all_text())
    model = LlamaForCausalLM(LlamaConfig(
        vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=2, max_position_embeddings=64, bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id))
    model.save_pretrained(path)
    tok.save_pretrained(path)


def make_bert(path: Path) -> None:
    from transformers import BertModel

    BertModel(_bert_config()).save_pretrained(path)
    wordpiece_tokenizer(all_text()).save_pretrained(path)


def make_bert_mlm(path: Path) -> None:
    from transformers import BertForMaskedLM

    BertForMaskedLM(_bert_config()).save_pretrained(path)  # decoder tied to the word embeddings
    wordpiece_tokenizer(all_text()).save_pretrained(path)


def make_bert_sst(path: Path) -> None:
    """A BERT sequence classifier fine-tuned for a few steps on ``sentiment``'s training text."""
    import torch
    from transformers import BertForSequenceClassification

    tok = wordpiece_tokenizer(all_text())
    torch.manual_seed(0)
    model = BertForSequenceClassification(_bert_config(
        num_labels=2, id2label=dict(enumerate(LABELS)), label2id={n: i for i, n in enumerate(LABELS)}))
    data = sentences(256, 1)

    def batch(step: int) -> dict[str, Any]:
        rows = [data[(step * 16 + i) % len(data)] for i in range(16)]
        enc = tok([t for t, _ in rows], padding=True, return_tensors="pt")
        return {**enc, "labels": torch.tensor([LABELS.index(lab) for _, lab in rows])}

    _train(model, batch, steps=60)
    model.save_pretrained(path)
    tok.save_pretrained(path)


def make_vit(path: Path) -> None:
    """A ViT image classifier trained for a few steps on ``shapes``' training images."""
    import numpy as np
    import torch
    from PIL import Image
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessorPil

    processor = ViTImageProcessorPil(size={"height": 16, "width": 16}, image_mean=[0.5] * 3, image_std=[0.5] * 3)
    shapes = path.parent / "shapes-for-vit"
    make_shapes(shapes)
    files = sorted((shapes / "train").glob("*/*.png"))
    labels = torch.tensor([SHAPES.index(f.parent.name) for f in files])
    pixels = processor([Image.open(f).convert("RGB") for f in files], return_tensors="pt")["pixel_values"]
    torch.manual_seed(0)
    model = ViTForImageClassification(ViTConfig(
        image_size=16, patch_size=4, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, num_labels=2, id2label=dict(enumerate(SHAPES)),
        label2id={n: i for i, n in enumerate(SHAPES)}))
    order = np.random.default_rng(0).permutation(len(files))

    def batch(step: int) -> dict[str, Any]:
        idx = torch.as_tensor(order[(step * 16) % len(files):][:16])
        return {"pixel_values": pixels[idx], "labels": labels[idx]}

    _train(model, batch, steps=60)
    model.save_pretrained(path)
    processor.save_pretrained(path)


MYNET = """
    import torch


    class MLP(torch.nn.Module):
        def __init__(self, features: int, classes: int):
            super().__init__()
            self.layers = torch.nn.Sequential(torch.nn.Linear(features, 32), torch.nn.ReLU(),
                                              torch.nn.Linear(32, 32), torch.nn.ReLU(), torch.nn.Linear(32, classes))

        def forward(self, x):
            return self.layers(x)
"""


def read_csv_split(path: Path, split: str) -> tuple[Any, Any]:
    """Features and sorted-name class ids of one split of ``blobs``, read with the csv module."""
    import torch

    rows = list(csv.DictReader(open(path, newline="")))
    names = sorted({r["label"] for r in rows})
    chosen = [r for r in rows if r["split"] == split]
    x = torch.tensor([[float(r[f"f{i}"]) for i in range(8)] for r in chosen], dtype=torch.float32)
    return x, torch.tensor([names.index(r["label"]) for r in chosen])


def user_module(project: Path) -> Any:
    """The user's ``src/mynet.py``, imported under its own name."""
    spec = importlib.util.spec_from_file_location("mynet", project / "src" / "mynet.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def train_user_model(project: Path, data: Path) -> Any:
    """The user's MLP (class in src/mynet.py), trained briefly on ``data`` and saved with torch.save."""
    import torch

    (project / "src").mkdir(parents=True)
    (project / "src" / "mynet.py").write_text(textwrap.dedent(MYNET))
    mynet = user_module(project)
    torch.manual_seed(0)
    model = mynet.MLP(8, 3)
    x, y = read_csv_split(data, "train")
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(150):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    sys.modules["mynet"] = mynet  # pickling finds the class by its module; the runs import it from src/
    try:
        torch.save(model.eval(), project / "mlp.pt")
    finally:
        del sys.modules["mynet"]
    return model


def make_user(path: Path) -> None:
    make_blobs(path / "data")
    train_user_model(path, path / "data" / "blobs.csv")


def zoo_suite(zoo: Zoo, root: Path) -> Path:
    """Every model source × task kind of the zoo in one suite file (``root/zoo.toml``)."""
    text = root / "text.txt"
    text.write_text("\n".join(t for t, _ in sentences(12, 5)) + "\n")
    data, user = zoo.path("sentiment"), zoo.path("user")
    models = {"gpt2": "hf", "llama": "hf", "bert": "hf", "bert-sst": "hf", "vit": "hf"}
    body = [f'[[models]]\nname = "{n}"\nsource = "{s}"\nref = "{zoo.path(n)}"\n' for n, s in models.items()]
    body.append(f'[[models]]\nname = "mlp"\nsource = "file"\nref = "{user / "mlp.pt"}"\n'
                f'options = {{ unsafe_pickle = true, python_path = ["{user / "src"}"] }}\n')
    suite = root / "zoo.toml"
    suite.write_text("\n".join([ZOO_HEAD, *body, ZOO_TASKS.format(
        text=text, train=data / "train.csv", test=data / "test.csv", shapes=zoo.path("shapes"),
        blobs=user / "data" / "blobs.csv"), ZOO_METHODS]))
    return suite


ZOO_HEAD = """[suite]
name = "zoo"
timeout_s = 300

[measure]
batch_sizes = [1]
warmup_s = 0
min_time_s = 0.01
min_iterations = 3
max_time_s = 0.05
energy = false
sustained_s = 0
"""
ZOO_TASKS = """[[tasks]]
name = "ppl"
kind = "perplexity"
models = ["gpt2"]
text = "{text}"
seq_len = 16
gen_prompt_tokens = 8
gen_new_tokens = 4
gen_repeats = 1

[[tasks]]
name = "fid"
kind = "fidelity"
models = ["gpt2", "llama", "bert"]
text = "{text}"
seq_len = 16
gen_batch_sizes = []

[[tasks]]
name = "sentiment"
kind = "text-classification"
models = ["bert-sst"]
data_files = {{ train = "{train}", test = "{test}" }}

[[tasks]]
name = "shapes"
kind = "image-classification"
models = ["vit"]
data_dir = "{shapes}"

[[tasks]]
name = "blobs"
kind = "classification"
models = ["mlp"]
path = "{blobs}"
split_column = "split"
"""
ZOO_METHODS = """[[methods]]
name = "int8"
use = "quant.int8-dynamic"

[[methods]]
name = "magnitude"
use = "prune.magnitude"
params = { amount = 0.3 }

[[methods]]
name = "structured"
use = "prune.structured"
params = { amount = 0.3 }
"""

MAKERS: dict[str, Callable[[Path], None]] = {
    "sentiment": make_sentiment, "shapes": make_shapes, "blobs": make_blobs, "gpt2": make_gpt2,
    "llama": make_llama, "bert": make_bert, "bert-mlm": make_bert_mlm, "bert-sst": make_bert_sst,
    "vit": make_vit, "user": make_user,
}


class Zoo:
    """``zoo.path("bert-sst")``: the directory of that model or data set, built on first use."""

    def __init__(self, root: Path):
        self.root = root

    def path(self, name: str) -> Path:
        from harness.process import exclusive

        target = self.root / name
        with exclusive(target):  # the session's xdist workers share the zoo: one builds
            if not target.exists():
                import torch

                threads = torch.get_num_threads()
                torch.set_num_threads(1)  # deterministic and quick for these sizes
                try:
                    MAKERS[name](target)
                finally:
                    torch.set_num_threads(threads)
        return target
