# The long versions of two checks whose bounded versions run in `make test`.
#
#   make bad-input-full      the whole bad-input cross product (about 500,000
#                            cases, a few minutes): BAD_INPUT_FULL=1
#   make model-check-long    the PT_ENTER/PT_EXIT model check with
#                            PTLOCK_MODEL_ITERATIONS executions per scheduler
#                            (default 300000)
#
# Set PTM_REFERENCE_C to ptm.c to include the C oracle in bad-input-full.

PTLOCK_MODEL_ITERATIONS ?= 300000

.PHONY: bad-input-full model-check-long

bad-input-full:
	BAD_INPUT_FULL=1 $(CARGO) test --locked -p ptm-sim --release --test scenarios -- --nocapture bad_input::

model-check-long:
	PTLOCK_MODEL_ITERATIONS=$(PTLOCK_MODEL_ITERATIONS) $(CARGO) test --locked -p ptm-ptlock-model --release
