"""What the codecs of trained models share (no entry point): the checkpoint-folder codec base
(:mod:`.model_folder`), reading their checkpoints (:mod:`.checkpoints`), the self-describing bitstream
(:mod:`.bitstream`), and the task-aware training loop (:mod:`.training`) with its ``train-codec`` driver
(:mod:`.driver`)."""
