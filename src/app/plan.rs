//! `ngfleet plan`: the waves, as text or JSON, without connecting anywhere.

use std::io::Write;

use super::load_plan;
use crate::cli::PlanArgs;
use crate::error::{Error, Exit};
use crate::report;

pub(super) fn show_plan(args: &PlanArgs, out: &mut dyn Write) -> Result<Exit, Error> {
    let (inputs, plan) = load_plan(&args.target, args.seed)?;
    let text = if args.target.json {
        report::plan::json(&plan, &inputs.inventory) + "\n"
    } else {
        report::plan::text(
            &plan,
            &inputs.inventory,
            &inputs.spec,
            jiff::Timestamp::now(),
        )
    };
    out.write_all(text.as_bytes()).map_err(Error::Output)?;
    Ok(Exit::Success)
}
