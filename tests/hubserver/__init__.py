"""A local Hugging Face Hub look-alike the test suite starts as a separate
process, so that the real ``huggingface_hub`` client (and PEFT through it) can
be exercised end to end without network. See server.py for what it covers."""
