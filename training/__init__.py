"""Training: event-based LIF model, EventProp adjoint, device-in-the-loop autograd, data and trainer."""
