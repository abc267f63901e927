"""Credit assessment (USE-2): the allow-listed inputs, the rules, the adverse-action notice."""
