"""Report wording, kept apart from the computations: one module per report (its findings with the rule
that raises each and the fix, headline, column labels, chart titles and alternative text) and `common`
(number formats, the severity rule, labels shared by every report)."""
