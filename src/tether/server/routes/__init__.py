"""The routes of `tether serve`, by resource; shared helpers in `common`."""
