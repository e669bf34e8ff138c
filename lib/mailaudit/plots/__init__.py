"""Charts of the reports. Importing the package applies the kit's chart theme (plots.common)."""
from mailaudit.plots.common import apply_theme

apply_theme()
