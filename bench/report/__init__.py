"""Helpers of bench/report.py: texts (documents, schemas, prompts), peer_worker (llama.cpp side), stats, render."""
