"""The method core: the Hessian Penalty, the direction matrix and its file, the fixed evaluation."""
