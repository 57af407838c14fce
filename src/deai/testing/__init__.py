"""Tools for testing deai networks from the outside (the adversarial catalogue, :mod:`.attacks`)."""
