"""Files in and out: images, masks and clips read into tensors, atomic writes, animations, sheets and
plots, run records and finished frames."""
