"""Claims for intercepted parcels lost or damaged on the way back."""
