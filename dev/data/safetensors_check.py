"""
safetensors_check.py -- a second reader of what dev/data/hf_export writes,
in Python with json + numpy only: it parses the safetensors files itself
(8-byte little-endian header length, JSON header, tensors tiling the data),
reads our model file itself (256 int32 header, bf16 parameters in
llmc/params.h order), and checks that every tensor of the Hugging Face folder
equals its slice of the model, bit for bit.

    python3 dev/data/safetensors_check.py HF_DIR MODEL.bin

Prints one line per folder and exits 1 on the first difference.
"""
import json
import os
import sys

import numpy as np

GPT2_MAGIC, LLAMA_MAGIC = 20240326, 20261125
DTYPES = {"F32": np.float32, "F16": np.float16, "BF16": np.uint16}  # bf16 kept as its bits


def read_safetensors(path):
    """{name: (dtype, shape, raw bytes)} of one file, checking the layout."""
    with open(path, "rb") as f:
        blob = f.read()
    n = int.from_bytes(blob[:8], "little")
    if n > len(blob) - 8:
        raise SystemExit(f"{path}: header length {n} beyond the file")
    header = json.loads(blob[8:8 + n])
    data = blob[8 + n:]
    header.pop("__metadata__", None)
    spans = []
    out = {}
    for name, entry in header.items():
        begin, end = entry["data_offsets"]
        dtype = np.dtype(DTYPES[entry["dtype"]])
        if end - begin != int(np.prod(entry["shape"], dtype=np.int64)) * dtype.itemsize:
            raise SystemExit(f"{path}: tensor {name}: {end - begin} bytes do not fit shape {entry['shape']}")
        spans.append((begin, end, name))
        out[name] = (dtype, tuple(entry["shape"]), data[begin:end])
    at = 0
    for begin, end, name in sorted(spans):
        if begin != at:
            raise SystemExit(f"{path}: tensor {name} starts at {begin}, expected {at}")
        at = end
    if at != len(data):
        raise SystemExit(f"{path}: {len(data) - at} bytes after the last tensor")
    return out


def read_folder(folder):
    index = os.path.join(folder, "model.safetensors.index.json")
    if not os.path.exists(index):
        return read_safetensors(os.path.join(folder, "model.safetensors"))
    with open(index) as f:
        weight_map = json.load(f)["weight_map"]
    tensors = {}
    for shard in sorted(set(weight_map.values())):
        tensors.update(read_safetensors(os.path.join(folder, shard)))
    missing = set(weight_map) - set(tensors)
    if missing:
        raise SystemExit(f"{index}: names tensors no shard holds: {sorted(missing)[:3]}")
    return tensors


def read_model(path):
    """(family, dims, {our tensor name: uint16 array of bf16 bits})."""
    with open(path, "rb") as f:
        header = np.frombuffer(f.read(1024), np.int32)
        body = np.frombuffer(f.read(), np.uint16)
    if header[1] != 5:
        raise SystemExit(f"{path}: version {header[1]}; this checker reads bf16 files (5)")
    T, V, L, NH, C, Vp = (int(x) for x in header[2:8])
    llama = int(header[0]) == LLAMA_MAGIC
    NKV, Fh, tied = (int(x) for x in header[8:11]) if llama else (NH, 4 * C, 1)
    HD = C // NH
    QKV = (NH + 2 * NKV) * HD
    FC = 2 * Fh if llama else Fh
    g = 0 if llama else 1  # gpt2-only tensors
    shapes = [("wte", (Vp, C)), ("wpe", (T * g, C)), ("ln1w", (L, C)), ("ln1b", (L * g, C)),
              ("qkvw", (L, QKV, C)), ("qkvb", (L * g, QKV)), ("attprojw", (L, C, C)), ("attprojb", (L * g, C)),
              ("ln2w", (L, C)), ("ln2b", (L * g, C)), ("fcw", (L, FC, C)), ("fcb", (L * g, FC)),
              ("fcprojw", (L, C, Fh)), ("fcprojb", (L * g, C)), ("lnfw", (C,)), ("lnfb", (C * g,)),
              ("lm_head", (0 if tied else Vp, C))]
    params, at = {}, 0
    for name, shape in shapes:
        n = int(np.prod(shape))
        params[name] = body[at:at + n].reshape(shape)
        at += n
    if at != body.size:
        raise SystemExit(f"{path}: {body.size} parameters, the header describes {at}")
    dims = dict(L=L, C=C, NH=NH, NKV=NKV, HD=HD, F=Fh, V=V, tied=tied)
    return ("llama" if llama else "gpt2"), dims, params


def expected(family, d, p):
    """{HF name: uint16 array} the folder must hold."""
    V, q, kv, Fh = d["V"], d["NH"] * d["HD"], d["NKV"] * d["HD"], d["F"]
    if family == "gpt2":
        want = {"transformer.wte.weight": p["wte"][:V], "transformer.wpe.weight": p["wpe"],
                "transformer.ln_f.weight": p["lnfw"], "transformer.ln_f.bias": p["lnfb"]}
        for l in range(d["L"]):
            h = f"transformer.h.{l}."
            want.update({h + "ln_1.weight": p["ln1w"][l], h + "ln_1.bias": p["ln1b"][l],
                         h + "attn.c_attn.weight": p["qkvw"][l].T, h + "attn.c_attn.bias": p["qkvb"][l],
                         h + "attn.c_proj.weight": p["attprojw"][l].T, h + "attn.c_proj.bias": p["attprojb"][l],
                         h + "ln_2.weight": p["ln2w"][l], h + "ln_2.bias": p["ln2b"][l],
                         h + "mlp.c_fc.weight": p["fcw"][l].T, h + "mlp.c_fc.bias": p["fcb"][l],
                         h + "mlp.c_proj.weight": p["fcprojw"][l].T, h + "mlp.c_proj.bias": p["fcprojb"][l]})
        return want
    want = {"model.embed_tokens.weight": p["wte"][:V], "model.norm.weight": p["lnfw"]}
    if not d["tied"]:
        want["lm_head.weight"] = p["lm_head"][:V]
    for l in range(d["L"]):
        h = f"model.layers.{l}."
        qkv, fc = p["qkvw"][l], p["fcw"][l]
        want.update({h + "input_layernorm.weight": p["ln1w"][l], h + "post_attention_layernorm.weight": p["ln2w"][l],
                     h + "self_attn.q_proj.weight": qkv[:q], h + "self_attn.k_proj.weight": qkv[q:q + kv],
                     h + "self_attn.v_proj.weight": qkv[q + kv:], h + "self_attn.o_proj.weight": p["attprojw"][l],
                     h + "mlp.gate_proj.weight": fc[:Fh], h + "mlp.up_proj.weight": fc[Fh:],
                     h + "mlp.down_proj.weight": p["fcprojw"][l]})
    return want


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    folder, model = sys.argv[1:]
    family, dims, params = read_model(model)
    got = read_folder(folder)
    want = expected(family, dims, params)
    if set(got) != set(want):
        raise SystemExit(f"{folder}: tensor names differ: extra {sorted(set(got) - set(want))[:3]}, "
                         f"missing {sorted(set(want) - set(got))[:3]}")
    for name, ref in want.items():
        dtype, shape, raw = got[name]
        if dtype != np.uint16:
            raise SystemExit(f"{folder}: {name} is {dtype}, expected BF16")
        arr = np.frombuffer(raw, np.uint16).reshape(shape)
        if arr.shape != ref.shape or not np.array_equal(arr, ref):
            raise SystemExit(f"{folder}: {name} differs from the model file (shape {arr.shape} vs {ref.shape})")
    with open(os.path.join(folder, "config.json")) as f:
        config = json.load(f)
    arch = {"gpt2": "GPT2LMHeadModel", "llama": "LlamaForCausalLM"}[family]
    if config.get("architectures") != [arch]:
        raise SystemExit(f"{folder}: config.json architectures {config.get('architectures')}, expected [{arch}]")
    print(f"ok {folder}: {len(want)} {family} tensors equal {model} bit for bit")


if __name__ == "__main__":
    main()
