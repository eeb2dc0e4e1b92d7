"""The .mzc container (spec/FORMAT.md): bytes, records, checksums; no numpy, no codecs."""
