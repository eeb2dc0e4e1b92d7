"""What compression changed: `mzc eval` (downstream analysis agreement) and `mzc bench` (rate-distortion on the
user's own files). Sits beside the file API; nothing that codes imports it."""

TASKS = ("segmentation", "intensity", "ratiometric")  # what `mzc eval` and `mzc bench --eval` compare
