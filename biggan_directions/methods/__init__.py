"""The methods that find directions: the Hessian Penalty training (hessian), SeFa and GANSpace, and their settings."""
