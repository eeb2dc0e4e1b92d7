"""mzc's context coder for integer images (spec section 6.5): hierarchical interlaced passes, a predictor and a
scale model fitted per chunk, deterministic probability tables and constriction's range coder."""
