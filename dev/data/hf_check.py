"""
hf_check.py -- our Hugging Face import and export against transformers itself
(run by dev/data/hf_check.sh on the GPU machine; nothing is downloaded).

1. Tiny random models built from a config with transformers -- GPT-2 saved in
   fp32, a Llama with GQA and Llama 3 RoPE scaling saved in bf16, an untied
   Llama saved in fp16 -- go through build/tools/hf_import. On the same
   single-document rows (random tokens, each document its own sequence, each
   token's target the next token, end-of-text after a document):
     - build/tools/model_eval (our fp32 CPU reference) against transformers in
       fp32 with the same bf16-rounded weights: logits and loss, ~1e-5;
     - train_gpt's validation loss (bf16 activations) against transformers fp32,
       next to transformers' own bf16 against its fp32: the bf16 tolerance;
   and the imported file exported again by build/tools/hf_export loads in
   transformers and gives the same logits.
2. A gpt2 trained for a few hundred steps by train_gpt on the embedded corpus
   is exported; transformers loads it (with the GPT-2 tokenizer files), its
   loss on fortunes validation documents is compared with train_gpt's on the
   same rows, its tokenizer gives our tokenizer's ids, and generate writes text.

    python3 dev/data/hf_check.py WORKDIR

Prints one table at the end; exits 1 if any check fails.
"""
import json
import os
import re
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
import transformers
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

EOT, V = 50256, 50257
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TOOLS = os.path.join(ROOT, "build", "tools")
TRAIN_GPT = os.path.join(ROOT, "train_gpt")
REF_TOL = 1e-4      # fp32 CPU reference vs transformers fp32 (same weights): summation order only
rows = []           # (check, measured, bound, PASS/FAIL)


def record(check, measured, bound, ok):
    rows.append((check, measured, bound, "PASS" if ok else "FAIL"))
    print(f"{'PASS' if ok else 'FAIL'} {check}: {measured} (bound {bound})", flush=True)


def run(cmd):
    """Run a command, echo its last lines, return stdout (raises on failure)."""
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    text = out.stdout + out.stderr
    print("$ " + " ".join(cmd) + "\n" + "\n".join(text.strip().splitlines()[-4:]), flush=True)
    if out.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed ({out.returncode}): {text[-800:]}")
    return out.stdout


def write_shard(path, docs):
    """llm.c uint16 shard: 256 int32 header (20240520, 1, tokens) + the tokens."""
    tokens = np.concatenate(docs).astype(np.uint16)
    header = np.zeros(256, np.int32)
    header[:3] = [20240520, 1, tokens.size]
    with open(path, "wb") as f:
        f.write(header.tobytes())
        f.write(tokens.tobytes())


def read_shard_docs(path):
    with open(path, "rb") as f:
        header = np.frombuffer(f.read(1024), np.int32)
        dtype = np.uint16 if header[0] == 20240520 else np.uint32
        tokens = np.frombuffer(f.read(), dtype).astype(np.int64)[:int(header[2])]
    starts = list(np.flatnonzero(tokens == EOT)) + [tokens.size]
    return [tokens[a:b] for a, b in zip(starts[:-1], starts[1:])]


def doc_targets(docs):
    """Each token's target: the next stream token (end-of-text after a document)."""
    return [np.append(d[1:], EOT) for d in docs]


@torch.no_grad()
def hf_logits_loss(model, docs, device="cpu"):
    """Logits (tokens, V) float32 of every document as its own sequence, and the mean loss."""
    model.to(device).eval()
    all_logits, total, count = [], 0.0, 0
    for d, t in zip(docs, doc_targets(docs)):
        logits = model(torch.tensor(d, device=device)[None]).logits[0].float()
        total += F.cross_entropy(logits, torch.tensor(t, device=device), reduction="sum").item()
        count += len(d)
        all_logits.append(logits.cpu().numpy())
    return np.concatenate(all_logits), total / count


def train_gpt_val_loss(model_bin, shard, B, T, batches):
    """train_gpt's validation loss on `shard` before any update (-l 0)."""
    out = run([TRAIN_GPT, "-e", model_bin, "-i", shard, "-j", shard, "-b", str(B), "-t", str(T), "-d", str(B * T),
               "-x", "1", "-l", "0", "-u", "0", "-v", "1", "-m", str(batches), "-s", "0"])
    return float(re.search(r"step 0: val loss ([0-9.]+)", out).group(1))


def randomize(model):
    """Every parameter random (norm weights around 1), so each tensor's mapping matters."""
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            center = 1.0 if p.dim() == 1 and ("ln_" in name or "norm" in name) and name.endswith("weight") else 0.0
            p.copy_(center + 0.1 * torch.randn(p.shape, generator=gen))


RANDOM_MODELS = [
    ("gpt2 (fp32 file)", torch.float32, {
        "model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "vocab_size": V, "n_positions": 64,
        "n_embd": 128, "n_layer": 2, "n_head": 2, "resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0}),
    ("llama GQA + llama3 RoPE (bf16 file)", torch.bfloat16, {
        "model_type": "llama", "architectures": ["LlamaForCausalLM"], "vocab_size": V, "hidden_size": 256,
        "intermediate_size": 320, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
        "max_position_embeddings": 256, "rms_norm_eps": 1e-5, "rope_theta": 500000.0, "tie_word_embeddings": True,
        "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                         "original_max_position_embeddings": 64}}),
    ("llama untied, HD 128 (fp16 file)", torch.float16, {
        "model_type": "llama", "architectures": ["LlamaForCausalLM"], "vocab_size": V, "hidden_size": 256,
        "intermediate_size": 384, "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 2,
        "max_position_embeddings": 128, "rms_norm_eps": 1e-6, "rope_theta": 10000.0,
        "tie_word_embeddings": False}),
]


def check_random_models(work):
    rng = np.random.default_rng(0)
    docs = [np.concatenate([[EOT], rng.integers(0, EOT, n - 1)]) for n in rng.integers(33, 65, 32)]
    shard = os.path.join(work, "random_docs.bin")
    write_shard(shard, docs)
    for i, (label, save_dtype, cfg_dict) in enumerate(RANDOM_MODELS):
        try:
            check_one_random(work, i, label, save_dtype, cfg_dict, docs, shard)
        except Exception as e:  # one model's failure must not hide the others' numbers
            record(f"{label}: ran", repr(e)[:200], "no error", False)


def check_one_random(work, i, label, save_dtype, cfg_dict, docs, shard):
    cfg_dir, hf_dir = os.path.join(work, f"cfg{i}"), os.path.join(work, f"hf{i}")
    os.makedirs(cfg_dir, exist_ok=True)
    with open(os.path.join(cfg_dir, "config.json"), "w") as f:
        json.dump(cfg_dict, f)
    config = AutoConfig.from_pretrained(cfg_dir)
    torch.manual_seed(i)
    model = AutoModelForCausalLM.from_config(config)
    randomize(model)
    model.to(save_dtype).save_pretrained(hf_dir)  # safetensors, the default format
    ours = os.path.join(work, f"model{i}.bin")
    run([os.path.join(TOOLS, "hf_import"), hf_dir, ours])
    # transformers in fp32 with the weights our file holds: the saved ones rounded to bf16 (parameters
    # only: Module.to(bf16) would also round buffers such as Llama's rotary inv_freq)
    ref = AutoModelForCausalLM.from_pretrained(hf_dir).float()
    with torch.no_grad():
        for p in ref.parameters():
            p.copy_(p.to(torch.bfloat16).float())
    ref_logits, ref_loss = hf_logits_loss(ref, docs)
    logits_file = os.path.join(work, f"logits{i}.bin")
    out = run([os.path.join(TOOLS, "model_eval"), ours, "--docs", shard, "--logits", logits_file])
    our_loss = float(re.search(r"mean loss ([0-9.]+)", out).group(1))
    our_logits = np.fromfile(logits_file, np.float32).reshape(ref_logits.shape)
    err = float(np.abs(our_logits - ref_logits).max() / np.abs(ref_logits).max())
    record(f"{label}: logits, fp32 CPU reference vs transformers fp32 (max |diff| / max |logit|)",
           f"{err:.2e}", f"{REF_TOL:.0e}", err < REF_TOL)
    rel = abs(our_loss - ref_loss) / ref_loss
    record(f"{label}: loss, fp32 CPU reference {our_loss:.5f} vs transformers fp32 {ref_loss:.5f}",
           f"{rel:.2e} rel", f"{REF_TOL:.0e}", rel < REF_TOL)
    gpu_loss = train_gpt_val_loss(ours, shard, 8, 64, 4)
    _, bf16_loss = hf_logits_loss(ref.to(torch.bfloat16), docs, "cuda")
    hf_drift = abs(bf16_loss - ref_loss) / ref_loss
    rel = abs(gpu_loss - ref_loss) / ref_loss
    bound = max(1e-2, 2 * hf_drift)
    record(f"{label}: loss, train_gpt (bf16) {gpu_loss:.5f} vs transformers fp32 {ref_loss:.5f} "
           f"(transformers bf16 {bf16_loss:.5f}: {hf_drift:.2e})", f"{rel:.2e} rel", f"{bound:.1e}", rel < bound)
    # and back: our file exported again loads in transformers with the same logits
    back = os.path.join(work, f"back{i}")
    run([os.path.join(TOOLS, "hf_export"), ours, back])
    again, _ = hf_logits_loss(AutoModelForCausalLM.from_pretrained(back).float(), docs)
    err = float(np.abs(again - ref_logits).max() / np.abs(ref_logits).max())
    record(f"{label}: hf_export of the imported file, transformers logits vs the original's", f"{err:.2e}",
           "1e-6", err < 1e-6)


def check_trained_model(work):
    run_dir = os.path.join(work, "trained")
    steps = 300
    run([TRAIN_GPT, "-e", "gpt2:d4,C=256,NH=4,T=256", "-b", "32", "-t", "256", "-d", "8192", "-x", str(steps),
         "-l", "1e-3", "-u", "30", "-v", "0", "-s", "0", "-o", run_dir])
    model_bin = os.path.join(run_dir, f"model_{steps:08d}.bin")
    # validation rows: fortunes validation documents of 129..256 tokens, one per row
    docs = [d for d in read_shard_docs(os.path.join(ROOT, "data", "fortunes_val_000000.bin")) if 129 <= len(d) <= 256]
    docs = docs[:32] if len(docs) >= 32 else docs[:len(docs) // 8 * 8]  # whole batches of 8 rows
    shard = os.path.join(work, "fortunes_long_docs.bin")
    write_shard(shard, docs)
    gpu_loss = train_gpt_val_loss(model_bin, shard, 8, 256, len(docs) // 8)
    hf_dir = os.path.join(work, "trained_hf")
    run([os.path.join(TOOLS, "hf_export"), model_bin, hf_dir])
    model = AutoModelForCausalLM.from_pretrained(hf_dir).float()
    _, ref_loss = hf_logits_loss(model, docs)
    _, bf16_loss = hf_logits_loss(model.to(torch.bfloat16), docs, "cuda")
    out = run([os.path.join(TOOLS, "model_eval"), model_bin, "--docs", shard])
    cpu_loss = float(re.search(r"mean loss ([0-9.]+)", out).group(1))
    rel = abs(gpu_loss - ref_loss) / ref_loss
    hf_drift = abs(bf16_loss - ref_loss) / ref_loss
    bound = max(1e-2, 2 * hf_drift)
    record(f"trained gpt2 ({steps} steps), {len(docs)} fortunes val docs: train_gpt {gpu_loss:.5f} vs transformers "
           f"fp32 {ref_loss:.5f} (transformers bf16 {bf16_loss:.5f}: {hf_drift:.2e})", f"{rel:.2e} rel",
           f"{bound:.1e}", rel < bound)
    rel = abs(cpu_loss - ref_loss) / ref_loss
    record(f"trained gpt2: fp32 CPU reference {cpu_loss:.5f} vs transformers fp32 {ref_loss:.5f}", f"{rel:.2e} rel",
           f"{REF_TOL:.0e}", rel < REF_TOL)
    tok = AutoTokenizer.from_pretrained(hf_dir)
    sample = "Hello world! The quick brown fox's 3 dogs -- don't   jump.\n\tOK?"
    sample_file = os.path.join(work, "sample.txt")
    with open(sample_file, "w") as f:
        f.write(sample)
    ours = [int(x) for x in run([os.path.join(TOOLS, "tokenize"), "encode", sample_file]).split()]
    theirs = tok.encode(sample)
    record("exported GPT-2 tokenizer files: transformers' ids equal ours", f"{len(theirs)} ids, equal={ours == theirs}",
           "equal", ours == theirs)
    model.float().to("cuda")
    prompt = torch.tensor([tok.encode("Q: What is the meaning of life?\nA:")], device="cuda")
    text = tok.decode(model.generate(prompt, max_new_tokens=40, do_sample=False, pad_token_id=EOT)[0])
    print("generate (greedy, 40 tokens):\n" + text, flush=True)
    record("trained gpt2: transformers generate() writes text", f"{len(text)} characters", "> prompt",
           len(text) > 40)


def main():
    work = sys.argv[1] if len(sys.argv) > 1 else "build/hf_check"
    os.makedirs(work, exist_ok=True)
    torch.set_num_threads(min(16, os.cpu_count() or 1))
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, "
          f"GPU {torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'none'}", flush=True)
    start = time.time()
    check_random_models(work)
    if os.environ.get("HF_CHECK_ONLY") == "random":
        rows.append(("trained gpt2", "skipped (HF_CHECK_ONLY=random)", "", "SKIP"))
    else:
        try:
            check_trained_model(work)
        except Exception as e:
            record("trained gpt2: ran", repr(e)[:300], "no error", False)
    print("\n| check | measured | bound | |\n|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(r) + " |")
    failed = sum(r[3] == "FAIL" for r in rows)
    print(f"{len(rows) - failed} passed, {failed} failed ({time.time() - start:.0f} s)")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
