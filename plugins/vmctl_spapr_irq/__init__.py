"""sPAPR interrupt controller plugin: XICS (legacy) and XIVE (native) for pseries guests.

Modules, by concern (docs/plugins/layout.md):

* ``plugin``   — the hook implementations, each delegating to the module below;
* ``schema``, ``settings`` — the ``[irq]``/``[pseries]`` sections and the keys read once;
* ``validate`` — pre-launch checks; ``predict`` — ``vmctl plan``'s CAS prediction;
* ``qemu``     — ``-machine`` properties and libvirt XML; ``host`` — the read-only KVM probe;
* ``sim``      — the device in vmctl's simulator; ``live`` — ``vmctl status``'s probe, the
  panel declaration and ``vmctl top``'s headline; ``panel`` — the Textual panel;
* ``model/``   — the controllers themselves (see :mod:`vmctl_spapr_irq.model`).

Importing the package imports nothing else.
"""
