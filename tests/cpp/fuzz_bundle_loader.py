"""Fuzz the C++ bundle loader (simreal_rt) with atheris: malformed input must be a clean BundleError.

    python tests/cpp/fuzz_bundle_loader.py -runs=100000 [-seed=1] [other libFuzzer flags]

The first input byte picks a target; the rest is that target's input:
  0  parse_safetensors(data)                      the weights parser alone
  1  parse_bundle_spec(data)                      deploy.yaml reading and validation alone
  2  load_bundle_from_memory(data, good weights)  a mutated deploy.yaml with valid weights
  3  load_bundle_from_memory(good yaml, data)     mutated weights, the yaml's sha256 set to match, so the
                                                  mutation reaches the parser, the shape checks and the network
Seeds are small valid MLP and GRU bundles shaped like the shipped quadruped one. Any exception other than
BundleError, or a BundleError whose message does not name the file, stops the run as a crash; so does a
segfault.

atheris instruments Python only and the C++ core is built by g++ (no libFuzzer coverage hooks), so
libFuzzer sees no new coverage and would shrink the corpus to one byte. A custom mutator therefore starts
most inputs from a valid seed: libFuzzer's own byte mutations (flips, inserts, erases, dictionary tokens)
and, for deploy.yaml, line edits (drop, repeat, swap, re-indent, replace a value with a hostile one). This
is mutation fuzzing from valid bundles, not coverage-guided fuzzing.
"""

from __future__ import annotations

import random
import re
import sys
import tempfile
from pathlib import Path

import atheris
import numpy as np
import yaml
from safetensors.numpy import save

with atheris.instrument_imports():
    import simreal_rt

SHIPPED_YAML = Path(__file__).resolve().parents[2] / "policies/pretrained/quadruped-flat/bundle/deploy.yaml"
TOKENS = [
    ": ", "- ", "\n  ", "\n- ", "[", "]", "{", "}", ",", "'", '"', "#", "&a", "*a", "!!", "|", "null", "~",
    "1e309", "-1", "0", ".nan", "gru", "mlp", "elu", "history", "dim", "input_dim", "rnn_hidden_dim",
    '"dtype"', '"F32"', '"shape"', '"data_offsets"', '"__metadata__"', "18446744073709551615", "\\u0000",
]  # fmt: skip


def small_bundle(network: str) -> tuple[str, bytes]:
    """A valid bundle with the shipped robot's spec and a tiny network (fast to hash and parse)."""
    rng = np.random.default_rng(0)
    spec = yaml.safe_load(SHIPPED_YAML.read_text())
    input_dim, output_dim = spec["network"]["input_dim"], spec["network"]["output_dim"]
    tensors: dict[str, np.ndarray] = {}
    head_in = input_dim
    spec["network"].update(type=network, hidden_sizes=[8])
    if network == "gru":
        hidden = 4
        spec["network"].update(rnn_hidden_dim=hidden, rnn_num_layers=1)
        for name, shape in (
            ("weight_ih", (3 * hidden, input_dim)),
            ("weight_hh", (3 * hidden, hidden)),
            ("bias_ih", (3 * hidden,)),
            ("bias_hh", (3 * hidden,)),
        ):
            tensors[f"gru.0.{name}"] = rng.normal(size=shape).astype(np.float32)
        head_in = hidden
    for index, (fan_in, fan_out) in enumerate(((head_in, 8), (8, output_dim))):
        tensors[f"layers.{index}.weight"] = rng.normal(size=(fan_out, fan_in)).astype(np.float32)
        tensors[f"layers.{index}.bias"] = rng.normal(size=(fan_out,)).astype(np.float32)
    weights = save(tensors, metadata={"format": "simreal-mlp"})
    spec["sha256"] = simreal_rt.sha256_hex(weights)
    return yaml.safe_dump(spec, sort_keys=False), weights


BUNDLES = [small_bundle("mlp"), small_bundle("gru")]
SHA_LINE = re.compile(r"^sha256: [0-9a-f]{64}$", re.MULTILINE)


def expect_clean(error: simreal_rt.BundleError, *sources: str) -> None:
    message = str(error)
    if not message or not message.startswith(sources):
        raise AssertionError(f"unclean rejection: {message!r}")


TARGETS = ("safetensors", "spec", "yaml", "weights")
OUTCOMES: dict[str, int] = {}
REJECTIONS: set[str] = set()  # distinct rejection messages with numbers removed, a rough count of checks reached
REPORT_EVERY = 25_000


def record(key: str, message: str = "") -> None:
    OUTCOMES[key] = OUTCOMES.get(key, 0) + 1
    if message:
        REJECTIONS.add(re.sub(r"[0-9]+|'[^']*'", "#", message)[:120])
    total = sum(OUTCOMES.values())
    if total % REPORT_EVERY == 0:
        # libFuzzer exits without running Python's atexit, so report as we go
        print(f"simreal-fuzz: {total} inputs {sorted(OUTCOMES.items())} distinct_rejections={len(REJECTIONS)}")
        sys.stdout.flush()


def one_input(data: bytes) -> None:
    if len(data) < 2:
        record("too_short")
        return
    target, rest = data[0] % 4, data[1:]
    yaml_text, weights = BUNDLES[data[1] % 2] if target == 3 else BUNDLES[0]
    try:
        if target == 0:
            simreal_rt.parse_safetensors(rest)
        elif target == 1:
            simreal_rt.parse_bundle_spec(rest)
        elif target == 2:
            simreal_rt.load_bundle_from_memory(rest, weights)
        else:
            body = rest[1:]
            matching = SHA_LINE.sub(f"sha256: {simreal_rt.sha256_hex(body)}", yaml_text)
            bundle = simreal_rt.load_bundle_from_memory(matching, body)
            bundle.evaluate(np.zeros(bundle.input_dim, dtype=np.float32))  # an accepted network must run
    except simreal_rt.BundleError as error:
        if target == 0:
            expect_clean(error, "tensor", "header", "file", "JSON", "__metadata__", "data", "safetensors")
        else:
            expect_clean(error, "deploy.yaml:", "policy.safetensors:")
        record(f"{TARGETS[target]}:rejected", str(error))
    else:
        record(f"{TARGETS[target]}:accepted")


def seeds() -> list[bytes]:
    out = []
    for index, (yaml_text, weights) in enumerate(BUNDLES):
        out += [b"\x00" + weights, b"\x01" + yaml_text.encode(), b"\x02" + yaml_text.encode()]
        out.append(b"\x03" + bytes([index]) + weights)
    return out


SEEDS = seeds()
HOSTILE_VALUES = [
    "", "-1", "0", "1e309", ".nan", "-.inf", "[]", "{}", "''", '"\\u0000"', "a: b", "&x 1", "*x", "!!str 1",
    "99999999999999999999", "0x10", "[1, [2, [3]]]", "{a: [}", "- 1", "true", "null", "'unterminated", "é", "|",
]  # fmt: skip


def mutate_yaml_lines(text: bytes, rng: random.Random) -> bytes:
    """One line-level edit of a deploy.yaml: the field structure stays recognisable, so validation is reached."""
    lines = text.split(b"\n")
    index = rng.randrange(len(lines))
    edit = rng.randrange(5)
    if edit == 0:
        del lines[index]
    elif edit == 1:
        lines.insert(index, lines[rng.randrange(len(lines))])
    elif edit == 2:
        other = rng.randrange(len(lines))
        lines[index], lines[other] = lines[other], lines[index]
    elif edit == 3:
        lines[index] = (b"  " + lines[index]) if rng.random() < 0.5 else lines[index][2:]
    else:
        key, _, _ = lines[index].partition(b": ")
        lines[index] = key + b": " + rng.choice(HOSTILE_VALUES).encode()
    return b"\n".join(lines)


def custom_mutator(data: bytes, max_size: int, seed: int) -> bytes:
    rng = random.Random(seed)
    base = data if len(data) > 64 and rng.random() < 0.3 else rng.choice(SEEDS)
    if base[0] % 4 in (1, 2) and rng.random() < 0.6:
        body = base[1:]
        for _ in range(rng.randint(1, 3)):
            body = mutate_yaml_lines(body, rng)
        return (base[:1] + body)[:max_size]
    out = base[:max_size]
    for _ in range(rng.randint(1, 4)):
        # libFuzzer's own mutations; the selector byte is kept so the target does not drift
        out = out[:1] + atheris.Mutate(out[1:], max_size - 1)
    return out


def write_seeds(corpus: Path) -> None:
    for index, seed in enumerate(SEEDS):
        (corpus / f"seed_{index}").write_bytes(seed)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="simreal-fuzz-") as tmp:
        corpus, dictionary = Path(tmp) / "corpus", Path(tmp) / "tokens.dict"
        corpus.mkdir()
        write_seeds(corpus)
        dictionary.write_text("".join(f'"{_escape(token)}"\n' for token in TOKENS))
        argv = [sys.argv[0], *sys.argv[1:], f"-dict={dictionary}", "-max_len=65536", str(corpus)]
        atheris.Setup(argv, one_input, custom_mutator=custom_mutator)
        atheris.Fuzz()


def _escape(token: str) -> str:
    """In libFuzzer dictionary syntax, where backslash, quote and newline are written as hex escapes."""
    return "".join(f"\\x{ord(c):02X}" if c in '\\"\n' else c for c in token)


if __name__ == "__main__":
    main()
