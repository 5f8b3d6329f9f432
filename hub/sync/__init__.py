"""Hugging Face Hub sync: the only package that imports huggingface_hub.

remote.py      endpoint / token / offline handling, fast failure, error translation
spec.py        REPO_ID[@REV] parsing; safety checks on remote file names
pull.py        list adapters in a repo at a commit; download + verify one
push.py        create repo / branch, upload as one commit (no-op when unchanged)
search.py      search adapters by base model; where a revision points now
model_card.py  the README.md (YAML metadata for the Hub) written on push
"""
