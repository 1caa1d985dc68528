"""What each denial category means for the people who work the denials.

A CARC says what the payer did; staff need to know which queue it belongs in. The categories
follow the work, not X12's wording: a missing-information denial is fixed by the biller and
resubmitted, an authorization denial by the intake team, a coordination-of-benefits one by
front-desk eligibility checks. Each category carries the default corrective action and the
rule behind it, used where a code has none of its own.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Category:
    label: str
    action: str
    basis: str | None


CATEGORIES: dict[str, Category] = {
    "patient_share": Category(
        "Patient responsibility", "Bill the patient; no payer follow-up needed.",
        "The member's benefit plan (deductible, coinsurance, copay)"),
    "contractual": Category(
        "Contractual or fee-schedule reduction",
        "Contractual write-off; compare the allowed amount with the contract.",
        "The provider's contract and fee schedule with the payer"),
    "bundled": Category(
        "Bundled / not paid separately",
        "Check the bundling edits and whether a distinct-service modifier is documented.",
        "CMS National Correct Coding Initiative (NCCI) edits and the payer's bundling policy"),
    "coding": Category(
        "Coding error or mismatch", "Correct the code, modifier or date and resubmit.",
        "HIPAA code sets (CPT, HCPCS, ICD-10-CM) and the payer's coding policy"),
    "medical_necessity": Category(
        "Medical necessity or level of service",
        "Send clinical documentation supporting the service and appeal.",
        "The payer's medical policy; Medicare: Social Security Act §1862(a)(1)(A), NCDs and "
        "LCDs"),
    "non_covered": Category(
        "Not covered by the plan",
        "Check the member's benefits; bill the patient only where a signed waiver allows.",
        "The member's plan exclusions; Medicare: Social Security Act §1862(a)"),
    "authorization": Category(
        "Authorization or precertification",
        "Obtain, correct or extend the authorization, then resubmit or appeal.",
        "The payer's prior-authorization policy and the member's plan"),
    "referral": Category(
        "Referral or network",
        "Get the referral or use an in-network provider; check before scheduling.",
        "The member's plan network and referral rules"),
    "eligibility": Category(
        "Patient eligibility or coverage dates",
        "Run an eligibility check for the date of service; bill the right payer.",
        "The member's enrollment with the payer"),
    "other_payer": Category(
        "Another payer is liable (coordination of benefits)",
        "Find the primary or liable payer and bill it first.",
        "Coordination-of-benefits rules; Medicare Secondary Payer, 42 U.S.C. 1395y(b)"),
    "wrong_payer": Category(
        "Sent to the wrong plan or payer", "Bill the plan or payer named.",
        "The member's coverage arrangement"),
    "timely_filing": Category(
        "Timely filing", "Appeal only with proof of timely filing; shorten the submission lag.",
        "The payer contract's filing limit; Medicare: 42 CFR 424.44 (12 months)"),
    "information_missing": Category(
        "Information or documentation missing",
        "Read the remark code for the missing item; supply it and resubmit.",
        "X12 837 claim requirements and the payer's documentation policy"),
    "duplicate": Category(
        "Duplicate or previously paid",
        "Do not rebill; find the original claim and its payment.", "The payer's duplicate edits"),
    "provider": Category(
        "Provider eligibility, credential or enrollment",
        "Check the provider's credential, enrollment and identifiers with the payer.",
        "The payer's credentialing and enrollment rules"),
    "benefit_limit": Category(
        "Benefit maximum or frequency limit",
        "Check the remaining benefits and limits; request an exception where warranted.",
        "The member's plan limits"),
    "appeal": Category(
        "Appeal or review decision", "Consider the next appeal level with new evidence.",
        "The payer's appeal policy; Medicare: 42 CFR 405 Subpart I"),
    "regulatory": Category(
        "Statutory or regulatory adjustment", "None; set by law.", None),
    "payment_info": Category(
        "Payment detail (informational)", "Post it; no follow-up unless the amount is wrong.",
        None),
    "injury_liability": Category(
        "Workers' compensation or property and casualty",
        "Work it with the carrier's adjuster under the state's rules.",
        "State workers' compensation and insurance law"),
    "institutional": Category(
        "Institutional payment detail", "Post it; check against the facility contract.",
        "The facility's payment system (e.g. Medicare IPPS/OPPS)"),
    "pharmacy": Category(
        "Pharmacy or drug pricing", "Check the drug pricing and quantity billed.",
        "The pharmacy benefit contract"),
    "pending": Category(
        "Pending, undecided", "Wait for the decision; follow up if it is late.", None),
}
