"""Training data: paired datasets on disk (``dataset``) and the synthetic generator (``synth``)."""
