"""The Ultralytics source family: the source, its export helpers, synthetic weights and its source fixes."""
