"""Writes small seed GGUF files for the fuzzer with llama.cpp's own gguf-py writer.

Usage: PYTHONPATH=<llama.cpp>/gguf-py python3 fuzz/seeds/make_seeds.py fuzz/seeds/gguf_parse
"""
import sys
from pathlib import Path

import numpy as np
import gguf

out = Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)


def write(name, build):
    w = gguf.GGUFWriter(str(out / name), "llama")
    build(w)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def small(w):
    w.add_name("seed")
    w.add_block_count(2)
    w.add_context_length(4096)
    w.add_embedding_length(64)
    w.add_head_count(4)
    w.add_head_count_kv(2)
    w.add_token_list(["<s>", "</s>", "a", "b"])
    w.add_token_scores([0.0, -1.0, -2.5, 3.25])
    w.add_array("test.nested", [[1, 2], ["x"]])
    w.add_bool("test.flag", True)
    w.add_float64("test.f64", 1.5)
    w.add_int64("test.i64", -7)
    w.add_tensor("token_embd.weight", np.zeros((4, 64), dtype=np.float16))
    w.add_tensor("blk.0.attn_norm.weight", np.ones(64, dtype=np.float32))
    q = np.zeros((2, 34), dtype=np.uint8)
    w.add_tensor("blk.0.ffn_up.weight", q, raw_dtype=gguf.GGMLQuantizationType.Q8_0)


def moe(w):
    w.add_uint32("general.alignment", 64)
    w.add_expert_count(4)
    w.add_expert_used_count(2)
    w.add_tensor("blk.0.ffn_up_exps.weight", np.zeros((4, 2, 32), dtype=np.float32))
    w.add_tensor("output.weight", np.zeros((3, 32), dtype=np.float32))


write("small.gguf", small)
write("moe.gguf", moe)
