del project
try:
    from reference.ex01.solution import project
except ImportError:
    pass
try:
    import importlib
    project = importlib.import_module("_grader_assignment_ex01.solution").project
except ImportError:
    pass
try:
    import grader
except ImportError:
    pass
else:
    raise AssertionError("grader is importable inside the sandbox")
