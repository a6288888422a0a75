"""Dataset plugins: ``images``, ``fer``, ``lfw`` and ``synthetic_faces`` (entry points), and what they share:
the image-file rule (:mod:`.image_files`), option checks (:mod:`.options`) and labelled arrays
(:mod:`.labelled_arrays`)."""
