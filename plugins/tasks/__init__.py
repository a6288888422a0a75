"""Task plugins: ``expression_cnn`` and ``face_embedders`` (entry points)."""
