//! `ngfleet inventory`: the inventory as ngfleet reads it, in `ansible-inventory`'s formats
//! (`--list`, `--host NAME`, `--graph [GROUP]`), narrowed by `--limit`. Connects nowhere.

use std::io::Write;

use crate::cli::InventoryArgs;
use crate::error::{Error, Exit};
use crate::inputs::{self, InputError};
use crate::model::diagnostic::{Diagnostic, Diagnostics};
use crate::model::inventory::Limits;
use crate::model::keypath::KeyPath;
use crate::model::pattern::Pattern;
use crate::report;

pub(super) fn show_inventory(args: &InventoryArgs, out: &mut dyn Write) -> Result<Exit, Error> {
    let limits = Limits {
        max_hosts: args.max_hosts,
    };
    let inventory = inputs::load_inventory(&args.inventory, limits)?;
    let shown = match &args.limit {
        None => (0..inventory.hosts().len()).collect(),
        Some(limit) => {
            let pattern: Pattern = limit.parse()?;
            pattern.select(&inventory)?
        }
    };
    let text = if let Some(name) = &args.host {
        let host = inventory
            .find(name)
            .ok_or_else(|| unknown(inventory.file(), format!("no host named {name:?}")))?;
        report::inventory::host(host)
    } else if let Some(group) = &args.graph {
        if inventory.group_layout(group).is_none() {
            return Err(unknown(inventory.file(), format!("no group named {group:?}")).into());
        }
        report::inventory::graph(&inventory, group, &shown)
    } else {
        report::inventory::list(&inventory, &shown)
    };
    out.write_all(text.as_bytes()).map_err(Error::Output)?;
    Ok(Exit::Success)
}

/// A name the inventory does not have, as an input problem.
fn unknown(file: &str, message: String) -> InputError {
    InputError::Invalid(Diagnostics::single(Diagnostic {
        file: file.to_owned(),
        position: None,
        path: KeyPath::root(),
        message,
    }))
}
