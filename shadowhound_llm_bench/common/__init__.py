"""Generic infrastructure the product and the simulator share; it imports nothing else of ours."""
