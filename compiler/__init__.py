"""kdr's compiler: names, values, compatibility rules and the plan. Never imports torch."""

from compiler.driver import CompileResult, compile_file, compile_source
from compiler.plan import Plan, PlanPass, build_plan

__all__ = ["CompileResult", "Plan", "PlanPass", "build_plan", "compile_file", "compile_source"]
