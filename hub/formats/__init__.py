"""Readers and writers for the file formats hub touches. No tensors are loaded here
unless a function says so explicitly."""
