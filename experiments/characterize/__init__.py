"""Reproductions of the published characterizations of text-to-image/video workloads.

Each study module exposes `run(arch, small) -> Study`; `experiments/reproduce.py` runs them
and writes a markdown report ("claim | paper | ttvsim") and PNG plots per study. The paper is
Golden et al., "Generative AI Beyond LLMs: System Implications of Multi-Modal Generation"
(ISPASS 2024, arXiv:2312.14385), which measured these models on NVIDIA A100 GPUs.
"""
