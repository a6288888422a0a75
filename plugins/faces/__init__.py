"""Face detection (:mod:`.detection`) and alignment (:mod:`.alignment`), shared by the LFW dataset and
the face embedders (no entry point)."""
