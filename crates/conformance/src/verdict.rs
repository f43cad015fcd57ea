//! Verdicts: the five outcomes of a case, each with its definition (the same text goes into
//! every report and `docs/VENDOR_GUIDE.md`), modelled on the LwM2M test fests.

use serde::Serialize;

/// The outcome of one case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    Fail,
    Inconclusive,
    NotApplicable,
    Error,
}

impl Verdict {
    pub const ALL: [Verdict; 5] = [
        Verdict::Pass,
        Verdict::Fail,
        Verdict::Inconclusive,
        Verdict::NotApplicable,
        Verdict::Error,
    ];

    /// The name in reports (`pass`, `fail`, `inconclusive`, `not_applicable`, `error`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::Inconclusive => "inconclusive",
            Verdict::NotApplicable => "not_applicable",
            Verdict::Error => "error",
        }
    }

    /// The Chinese name shown to operators.
    pub const fn zh(self) -> &'static str {
        match self {
            Verdict::Pass => "通过",
            Verdict::Fail => "不通过",
            Verdict::Inconclusive => "无法判定",
            Verdict::NotApplicable => "不适用",
            Verdict::Error => "测试错误",
        }
    }

    /// What the verdict means.
    pub const fn definition(self) -> &'static str {
        match self {
            Verdict::Pass => {
                "Every check of the case held: the system under test did what the rules named by the case require, as far as the case observes it. / 本用例的每项检查均成立。"
            }
            Verdict::Fail => {
                "At least one check did not hold: the system under test did what a rule forbids or did not do what it requires. The failed checks name the rules broken, and the evidence shows the frames. / 至少一项检查不成立：被测系统违反了所列规则。"
            }
            Verdict::Inconclusive => {
                "The case ran but could not decide: a precondition outside the kit's control was not met (a person did not act in time, a setting of the system under test hides the behaviour, no admin access to check what was stored). Says nothing against the system under test; rerun with the missing precondition. / 用例已运行但无法判定：缺少工具无法控制的前提条件。"
            }
            Verdict::NotApplicable => {
                "The declared features exclude the case (an apicode, a device kind or JWE the system under test does not claim); it was not run. / 所声明的功能不包括本用例，未运行。"
            }
            Verdict::Error => {
                "The kit or the test environment failed (cannot connect, the admin API refused the set-up, a timeout before any protocol exchange): says nothing about conformance. Fix the environment and rerun. / 测试工具或环境出错，不说明被测系统是否符合。"
            }
        }
    }
}
