// placeholder until the Python issue
