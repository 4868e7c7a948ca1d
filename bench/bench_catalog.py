"""Benchmark: list the models and datasets of a synthetic GPU box, cold and warm, against gguf-py and huggingface_hub.

Builds in a temporary folder (deleted at the end; sparse files keep the disk use to ~200 MB):

- 40 Hugging Face model folders with realistic safetensors headers (a Llama-7B tensor table over sparse
  shards, one folder in 291 shards), config.json, tokenizer_config.json and a model card;
- 20 GGUF files with 150k-token vocabularies (tokens, scores, types, merges) and tiny tensors;
- a Hugging Face hub cache with 10 models in its real layout (blobs, refs/main, symlinked snapshots);
- 30 datasets: JSONL, CSV and Parquet files, and a 1 GB JSONL (real rows, then a sparse tail).

Each measurement runs in a fresh interpreter so its peak RSS is its own. `ftbench models` itself is timed
too, as a user runs it (start-up and printing included), cold and warm, against the same < 1 s target. "Cold" has no metadata cache in
the workspace, "warm" is the next visit. Time to the first row is when the catalog's listing yields its
first entry; the complete list is every entry with its details. The peers do the same work their way:
gguf-py's `GGUFReader` opening one of the GGUF files (the catalog's old path), and
`huggingface_hub.scan_cache_dir` listing the hub cache. Prints a table and the ratios, checks the targets
(first row < 0.3 s, complete < 1 s cold and < 0.2 s warm, >= 50x faster than GGUFReader per GGUF file,
peak RSS < 200 MB) and exits 1 when one is missed.

    python bench/bench_catalog.py [--keep DIR] [--skip-gguf-py]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

N_MODELS, N_GGUF, N_HUB, N_DATASETS, VOCAB = 40, 20, 10, 30, 150_000
LLAMA_7B = {"hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32, "num_attention_heads": 32,
            "num_key_value_heads": 32, "vocab_size": 32000, "max_position_embeddings": 4096}  # fmt: skip
BIG_JSONL = 1024**3


# ----------------------------------------------------------------------------------------------
# the synthetic box
# ----------------------------------------------------------------------------------------------
def llama_tensors(cfg: dict) -> list[tuple[str, list[int]]]:
    h, inter, v = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    out = [("model.embed_tokens.weight", [v, h])]
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        out += [(p + f"self_attn.{n}_proj.weight", [h, h]) for n in "qkvo"]
        out += [(p + "mlp.gate_proj.weight", [inter, h]), (p + "mlp.up_proj.weight", [inter, h])]
        out += [(p + "mlp.down_proj.weight", [h, inter]), (p + "input_layernorm.weight", [h])]
        out += [(p + "post_attention_layernorm.weight", [h])]
    return out + [("model.norm.weight", [h]), ("lm_head.weight", [v, h])]


def write_sparse_safetensors(path: Path, tensors: list[tuple[str, list[int]]]) -> None:
    """A real safetensors header; the data region is a hole (sparse), so no weights touch the disk."""
    header, offset = {"__metadata__": {"format": "pt"}}, 0
    for name, shape in tensors:
        n = 2
        for d in shape:
            n *= d
        header[name] = {"dtype": "BF16", "shape": shape, "data_offsets": [offset, offset + n]}
        offset += n
    raw = json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw)
        f.truncate(8 + len(raw) + offset)


def write_model_folder(folder: Path, shards: int) -> dict[str, bytes]:
    folder.mkdir(parents=True, exist_ok=True)
    tensors = llama_tensors(LLAMA_7B)
    per = -(-len(tensors) // shards)
    weight_map = {}
    for s in range(shards):
        part = tensors[s * per : (s + 1) * per]
        name = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
        write_sparse_safetensors(folder / name, part)
        weight_map.update({t: name for t, _ in part})
    files = {
        "config.json": json.dumps({"architectures": ["LlamaForCausalLM"], "model_type": "llama", **LLAMA_7B}),
        "model.safetensors.index.json": json.dumps({"weight_map": weight_map}),
        "tokenizer_config.json": json.dumps({"chat_template": "{% for m in messages %}{{ m.content }}{% endfor %}"}),
        "README.md": "---\nlicense: apache-2.0\n---\n# A model\n",
    }
    for name, text in files.items():
        (folder / name).write_text(text)
    return {name: (folder / name).read_bytes() for name in files}


def write_gguf(path: Path) -> None:
    import gguf
    import numpy as np

    rng = random.Random(0)
    letters = "abcdefghijklmnopqrstuvwxyzĠ"
    tokens = ["".join(rng.choice(letters) for _ in range(rng.randint(2, 10))) for _ in range(VOCAB)]
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_context_length(8192)
    w.add_embedding_length(64)
    w.add_block_count(2)
    w.add_head_count(4)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_Q8_0)
    w.add_tokenizer_model("gpt2")
    w.add_token_list(tokens)
    w.add_token_types([1] * VOCAB)
    w.add_token_scores([0.0] * VOCAB)
    w.add_token_merges([f"{a} {b}" for a, b in zip(tokens, tokens[1:], strict=False)])
    w.add_chat_template("{{ messages }}")
    w.add_tensor("token_embd.weight", np.zeros((16, 64), np.float16))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def write_hub_model(hub: Path, repo_id: str, files: dict[str, bytes]) -> None:
    repo = hub / f"models--{repo_id.replace('/', '--')}"
    commit = f"{abs(hash(repo_id)):040x}"[:40]
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    (repo / "blobs").mkdir()
    snap = repo / "snapshots" / commit
    snap.mkdir(parents=True)
    for i, (name, data) in enumerate({**files, "model.safetensors": None}.items()):
        blob = repo / "blobs" / f"{i:064x}"
        if data is None:
            write_sparse_safetensors(blob, llama_tensors({**LLAMA_7B, "num_hidden_layers": 2}))
        else:
            blob.write_bytes(data)
        os.symlink(os.path.relpath(blob, snap), snap / name)
    (snap / "model.safetensors.index.json").unlink()  # one file, no index


def write_datasets(root: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = random.Random(1)
    for i in range(N_DATASETS - 1):
        rows = [
            {
                "messages": [
                    {"role": "user", "content": f"q{i}-{k}"},
                    {"role": "assistant", "content": "a" * rng.randint(5, 80)},
                ]
            }
            for k in range(1000)
        ]
        kind = ("jsonl", "csv", "parquet")[i % 3]
        path = root / f"set{i // 10}" / f"d{i:02d}.{kind}"
        path.parent.mkdir(parents=True, exist_ok=True)
        if kind == "jsonl":
            path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        elif kind == "csv":
            path.write_text("text,label\n" + "".join(f"row {k} text,{k % 2}\n" for k in range(1000)))
        else:
            pq.write_table(pa.table({"prompt": ["p"] * 1000, "chosen": ["c"] * 1000, "rejected": ["r"] * 1000}), path)
    big = root / "big" / "train-1gb.jsonl"
    big.parent.mkdir(parents=True)
    line = json.dumps(
        {"messages": [{"role": "user", "content": "hello " * 20}, {"role": "assistant", "content": "hi " * 40}]}
    )
    with open(big, "w") as f:
        while f.tell() < 16 * 1024**2:
            f.write(line + "\n")
        f.truncate(BIG_JSONL)  # the rest is a hole: the catalog reads the head and estimates the row count


def build_box(root: Path) -> None:
    from ftbench.core.workspace import Workspace

    ws = Workspace.open(root / "ws")
    for i in range(N_MODELS):
        files = write_model_folder(ws.models_dir / f"org{i % 5}" / f"llama-{i:02d}", 291 if i == 0 else 3)
    gguf_dir = ws.models_dir / "gguf"
    gguf_dir.mkdir()
    write_gguf(gguf_dir / "m-00.gguf")
    for i in range(1, N_GGUF):
        shutil.copyfile(gguf_dir / "m-00.gguf", gguf_dir / f"m-{i:02d}.gguf")
    for i in range(N_HUB):
        write_hub_model(root / "hf" / "hub", f"hub-org/model-{i}", files)
    write_datasets(ws.datasets_dir)


# ----------------------------------------------------------------------------------------------
# measurements (each in its own interpreter)
# ----------------------------------------------------------------------------------------------
def peak_rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_listing(root: Path, kind: str) -> dict:
    t_import = time.perf_counter()
    from ftbench.catalog.cache import fill_details
    from ftbench.catalog.datasets import DatasetCatalog
    from ftbench.catalog.model_listing import ModelCatalog
    from ftbench.core.workspace import Workspace

    t0, cpu0 = time.perf_counter(), time.process_time()
    ws = Workspace.open(root / "ws", create=False)
    catalog = (ModelCatalog if kind == "models" else DatasetCatalog)(ws, hf_cache=True)
    first, entries = None, []
    for entry in catalog.listing():
        first = first or time.perf_counter() - t0
        entries.append(entry)
    listed = time.perf_counter() - t0
    infos = fill_details(catalog, entries)  # as `ftbench models` does: a few threads
    complete, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    catalog.save()
    errors = [f"{i.name}: {i.error}" for i in infos if i.error]
    return {"import_s": t0 - t_import, "first_row_s": first, "listed_s": listed, "complete_s": complete,
        "cpu_s": cpu,
            "entries": len(infos), "from_cache": sum(e.complete for e in entries), "errors": errors,
            "peak_rss_mb": peak_rss_mb()}  # fmt: skip


def child_peers(root: Path, skip_gguf_py: bool) -> dict:
    from ftbench.catalog.gguf_header import read_gguf_header
    from ftbench.catalog.hf_cache import hf_cache_repos
    from ftbench.catalog.walk import folder_fingerprint

    ggufs = sorted((root / "ws" / "models" / "gguf").glob("*.gguf"))
    ours = []
    for path in ggufs:
        t = time.perf_counter()
        header = read_gguf_header(path)
        ours.append(time.perf_counter() - t)
        assert header.array_length("tokenizer.ggml.tokens") == VOCAB
    ours.sort()
    out = {"header_reader_s": ours[len(ours) // 2]}
    if not skip_gguf_py:
        import gguf

        t = time.perf_counter()
        reader = gguf.GGUFReader(ggufs[0])
        out["gguf_py_s"] = time.perf_counter() - t
        assert len(reader.fields["tokenizer.ggml.tokens"].data) == VOCAB
    from huggingface_hub import scan_cache_dir

    t = time.perf_counter()
    info = scan_cache_dir(root / "hf" / "hub")
    out["scan_cache_dir_s"] = time.perf_counter() - t
    t = time.perf_counter()
    repos = hf_cache_repos("model")
    sizes = [folder_fingerprint(snapshot).size for _, snapshot in repos]
    out["hf_layout_s"] = time.perf_counter() - t
    assert len(repos) == len(info.repos) == N_HUB and all(sizes)
    return out


def child_env(root: Path) -> dict[str, str]:
    """The box's own HF cache, offline, and this checkout's ftbench."""
    env = {
        **os.environ,
        "HF_HOME": str(root / "hf"),
        "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
    }
    env.pop("HF_HUB_CACHE", None)
    return env


def run_child(root: Path, *args: str) -> dict:
    proc = subprocess.run(
        [sys.executable, __file__, "--child", *args, str(root)], capture_output=True, text=True, env=child_env(root)
    )
    if proc.returncode:
        raise SystemExit(f"child {args} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def time_cli(root: Path) -> dict:
    """`ftbench models` as a user types it: a fresh interpreter, start-up and printing included."""
    env = {**child_env(root), "COLUMNS": "120"}
    cmd = [sys.executable, "-m", "ftbench.cli", "--workspace", str(root / "ws"), "models"]
    t, cpu0 = time.perf_counter(), os.times()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall, cpu1 = time.perf_counter() - t, os.times()
    if proc.returncode:
        raise SystemExit(f"ftbench models failed:\n{proc.stderr}")
    rows = len(proc.stdout.splitlines()) - 1  # under the header line
    cpu = (cpu1.children_user - cpu0.children_user) + (cpu1.children_system - cpu0.children_system)
    return {"wall_s": wall, "cpu_s": cpu, "rows": rows}


# ----------------------------------------------------------------------------------------------
# report
# ----------------------------------------------------------------------------------------------
def report(results: dict, peers: dict) -> bool:
    ok = True
    rows = []
    for kind in ("models", "datasets"):
        for state in ("cold", "warm"):
            r = results[(kind, state)]
            limit = 1.0 if state == "cold" else 0.2
            good = r["first_row_s"] < 0.3 and r["complete_s"] < limit and r["peak_rss_mb"] < 200
            ok &= good
            cells = [kind, state, f"{r['entries']} ({r['from_cache']} cached)", f"{r['first_row_s']:.3f}"]
            cells += [f"{r['complete_s']:.3f} (< {limit})", f"{r['cpu_s']:.3f}", f"{r['peak_rss_mb']:.0f}"]
            cells.append("ok" if good else "MISSED")
            rows.append("| " + " | ".join(cells) + " |")
    print(
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (wall times stretch with it; CPU seconds less)"
    )
    print("| list | state | entries | first row s (< 0.3) | complete s | CPU s | peak RSS MB (< 200) | target |")
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    print()
    print("| command | state | rows | wall s (< 1.0) | CPU s | target |")
    print("|---|---|---|---|---|---|")
    for state in ("cold", "warm"):
        r = results.pop(("ftbench models", state))
        good = r["wall_s"] < 1.0
        ok &= good
        print(f"| ftbench models | {state} | {r['rows']} | {r['wall_s']:.3f} | {r['cpu_s']:.3f} | "
              f"{'ok' if good else 'MISSED'} |")  # fmt: skip
    print()
    print("| per-item work | ftbench | peer | peer / ftbench |")
    print("|---|---|---|---|")
    if "gguf_py_s" in peers:
        ratio = peers["gguf_py_s"] / peers["header_reader_s"]
        ok &= ratio >= 50
        print(f"| open one 150k-vocab GGUF (target >= 50x) | {peers['header_reader_s'] * 1000:.1f} ms | "
              f"GGUFReader {peers['gguf_py_s'] * 1000:.0f} ms | {ratio:.0f}x |")  # fmt: skip
    ratio = peers["scan_cache_dir_s"] / peers["hf_layout_s"]
    print(f"| list a {N_HUB}-model hub cache with sizes | {peers['hf_layout_s'] * 1000:.1f} ms | "
          f"scan_cache_dir {peers['scan_cache_dir_s'] * 1000:.1f} ms | {ratio:.1f}x |")  # fmt: skip
    for key, r in results.items():
        if r["errors"]:
            print(f"note: {key} listed {len(r['errors'])} entries with problems, e.g. {r['errors'][0]}")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep", help="build the box in DIR and keep it")
    parser.add_argument("--skip-gguf-py", action="store_true", help="skip the GGUFReader peer (tens of seconds)")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        *what, root = args.child
        out = child_peers(Path(root), what[1] == "1") if what[0] == "peers" else child_listing(Path(root), what[0])
        print(json.dumps(out))
        return 0
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="ftbench-bench-catalog-"))
    try:
        t = time.perf_counter()
        if not (root / "ws").exists():
            build_box(root)
        print(f"synthetic box in {root} ({time.perf_counter() - t:.0f} s to build)")
        results = {}
        for kind in ("models", "datasets"):
            (root / "ws" / ".cache" / f"catalog-{kind}.json").unlink(missing_ok=True)
            results[(kind, "cold")] = run_child(root, kind)
            results[(kind, "warm")] = run_child(root, kind)
        for state in ("cold", "warm"):
            if state == "cold":
                (root / "ws" / ".cache" / "catalog-models.json").unlink(missing_ok=True)
            results[("ftbench models", state)] = time_cli(root)
        peers = run_child(root, "peers", "1" if args.skip_gguf_py else "0")
        return 0 if report(results, peers) else 1
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
