"""Neural codecs and what they need: learned image models (CompressAI), neural fields, their fitting and training."""
