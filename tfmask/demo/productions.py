"""The sentence productions of the news grammar, grouped by document topic.

Each string is a template for `grammar.Template`: `{slot}` is filled from the document's
entities (`o` a company, `c` a city, `p` a person, `pr` a product, `ev` an event, `t` a team,
`u` a university, `pl` a player; `.`-suffixes name their facts), `<verb>` agrees with the
document's tense, `[a|b]` picks one and `{#noun:lo-hi}` is a count with an agreeing noun.
A production is only used when the document has every slot it needs.
"""

from __future__ import annotations

TOPIC_TEMPLATES: dict[str, list[str]] = {
    "company": [
        "{o} is a {o.nat} {o.industry} company based in {o.city} .",
        "{o} was founded in {o.founded} and employs about {o.staff} people .",
        "{o.ceo} , the chief executive of {o} , <announce> a new {o.pcat} {when} .",
        "The company <report> revenue of {money} for the {quarter} quarter , up {pct} percent"
        " from a year earlier .",
        "Shares of {o} [<rise/pl>|<fall/pl>] {pct} percent after the announcement .",
        "{o} <open> a new office in {c2} , its first outside {o.country} .",
        "{p} <join> {o} as a {p.role} {when} .",
        "{o} <hire> {#new worker:20-400} at its headquarters in {o.city} .",
        "According to {p} , the {o.product} <sell> well in {c2.country} .",
        "{o} and {o2} <sign/pl> a {deal_adj} agreement to develop {o.pcats} together .",
        "The board of directors <approve> the plan on {date} .",
        "{o.ceo.last} <tell> reporters that the company <will> expand into {c2.country} .",
        "\" We are proud of what our team has built , \" <say/now> {o.ceo} .",
        "{o} <supply> {o.pcats} to customers in {c2.country} and {o.country} .",
        "The {o.product} remains the best selling {o.pcat} that {o} makes .",
        "Unions in {o.city} <warn/pl> that the plan <will> cost {#job:20-300} .",
        "Profits <fall/pl> by {pct} percent because of higher costs for {cost_item} .",
        "Its main rival , {o2} , is based in {o2.city} .",
        "{p.last} , a {p.role} at the company , <say> demand for {o.pcats} <be> strong .",
        "The {o.nat} government <buy> a small stake in {o} for {money} .",
        "{o} <plan> to build a second factory near {o.city} by {later_year} .",
        "{o} <become> the largest {o.nat} maker of {o.pcats} {when} .",
        "{o} <compete> with {o2} for {nat} customers .",
    ],
    "city": [
        "{c} is a {c.kind} on the {c.river} river in {c.country} .",
        "{c.capital} is the capital of {c.country} and lies on the {c.river} river .",
        "About {c.pop} people live in {c} , which is known for its {c.known} .",
        "The council of {c} <approve> a new {civic} [over the {c.river} river|near the main"
        " station|in the old town|next to the harbour|on the edge of the city] .",
        "The mayor of {c} , {c.mayor} , <say> the work <will> be finished by {month}"
        " {later_year} .",
        "The new {civic} <will> cost about {money} and take {#year:1-6} to build .",
        "Residents of {c} <complain/pl> about {complaint} at a public meeting .",
        "Trains between {c} and {c2} <run/pl> every {minutes} minutes .",
        "{c.mayor} has been mayor of {c} since {c.mayor_since} .",
        "The {c.paper} <report> that rents in {c} <rise/pl> by {pct} percent .",
        "Tourists <visit/pl> {c} every {season} to see the {c.known} .",
        "{c} <host> the {c.event} every {c.event.month} .",
        "{c.council} <vote> to close the old {civic} on {weekday} .",
        "Heavy rain <cause> flooding along the {c.river} river near {c} .",
        "{c.mayor.last} <promise> to tackle {complaint} before the next election .",
        "Police in {c} <close> several streets for the {c.event} .",
        "{c} <welcome/pl> many {nat} visitors to the {c.event} .",
    ],
    "person": [
        "{p} was born in {p.birthcity} in {p.born} .",
        "{p.pron} studied {p.subject} at the {p.uni} before moving to {p.city} .",
        "{p.last} <work> as a {p.role} at {p.org} in {p.city} .",
        "{p.pron} <lead> a team of {#person:3-40} at {p.org} .",
        "{p.pron} <live> in {p.city} with {p.poss} {p.family} .",
        "In {p.poss} spare time , {p.first} <enjoy> {p.hobby} and {p.hobby2} .",
        "Colleagues <describe/pl> {p.first} as {p.trait} and {p.trait2} .",
        "{p} won the {p.award} in {p.award_year} .",
        "{p} , a {p.nat} {p.role} , <speak> at the {ev} in {ev.city} {when} .",
        "Before joining {p.org} , {p.pron} spent {p.prev_years} years at {p.prev_org} .",
        "{p.first} says that {p.poss} favourite place in {p.city} is the {p.city.known} .",
        "{p.pron} <publish> a book about {topic} {when} .",
        "{p.last} <receive> an honorary degree from the {p.uni} {when} .",
        "\" I have always loved {p.hobby} , \" <say/now> {p.first} .",
    ],
    "product": [
        "{o} <unveil> the {pr} , a new {pr.cat} , at the {ev} .",
        "The {pr} <cost> {price} and <come> in {pr.colour} , {pr.colour2} and {pr.colour3} .",
        "The {pr} is made at the company 's factory in {o.city} .",
        "Reviewers <praise/pl> its {pr.feat} but <criticise/pl> its {pr.feat2} .",
        "The {pr} <go> on sale in {o.country} on {date} .",
        "{o.ceo} <say> the {pr} <be> lighter and faster than its rivals .",
        "Early buyers <complain/pl> that the {pr.feat} <stop> working after a few weeks .",
        "Sales of the {pr} <reach/pl> {big_n} units in the first month .",
        "The {pr.feat} of the new {pr.cat} was designed by {p} , a {p.role} at {o} .",
        "Rival {o2} <plan> to launch a similar {pr.cat} {when} .",
        "The first {pr} was launched in {pr.launched} .",
        "The {o.nat} press <call> the {pr} the best {pr.cat} of the year .",
        "The {pr} <win> a design prize at the {ev} .",
    ],
    "event": [
        "The {ev} takes place in {ev.city} every {ev.month} .",
        "More than {big_n} visitors <attend/pl> the {ev} {when} .",
        "{nat} {ev.who} <perform/pl> on the main stage .",
        "The opening night <be> hosted by {p} , a {p.role} from {p.city} .",
        "Organisers <say/pl> ticket sales <be/pl> the best since {old_year} .",
        "The {ev} was first held in {ev.founded} .",
        "The main prize <go> to {p2} from {p2.city} .",
        "Hotels in {ev.city} <be/pl> fully booked for the whole week .",
        "The {ev} <be> sponsored by {o} and {ev.city.council} .",
        "Tickets for the {ev} <cost/pl> {price} .",
        "Several {ev.who} from {c2.country} <cancel/pl> their visit because of the weather .",
    ],
    "sports": [
        "{t} <beat> {t2} {score} in {t.city} on {weekday} .",
        "{t} <lead> 1 - 0 at half time .",
        "{pl} <score> twice in the second half .",
        "The coach of {t} , {t.ceo} , <say> the team <play> well .",
        "{t} <remain> {ordinal} in the league with {#point:10-60} .",
        "About {big_n} fans <watch/pl> the match at the {t.stadium} .",
        "{pl} , the {pl.nat} {pl.role} from {pl.birthcity} , <be> named player of the match .",
        "{t} <will> face {t2} in the cup final in {month} .",
        "The referee <send> off {pl2} after {#minute:10-85} .",
        "{t.ceo.last} <praise> the {pl.role} {pl.last} for {pl.poss} hard work .",
        "The {t.city} club was founded in {t.founded} .",
        "{pl2.last} <miss> a penalty in the first half .",
    ],
    "weather": [
        "Temperatures in {c} <reach/pl> {temp} degrees on {weekday} .",
        "Forecasters <warn/pl> of heavy rain and strong winds along the coast of {c.country} .",
        "Dense fog <delay> flights at {c.airport} .",
        "Snow <close> several roads in the hills above {c} .",
        "The {c.river} river <rise> to its highest level since {old_year} .",
        "Farmers near {c} <say/pl> the dry summer <damage> their {crop} .",
        "Schools in {c} <stay/pl> closed because of the storm .",
        "A strong wind <bring> down trees in {c} and {c2} .",
    ],
    "science": [
        "Researchers at the {u} <publish/pl> a study on {topic} .",
        "The team , led by {p} , <find> that {finding} .",
        "{p} is a {p.role} of {p.subject} at the {u} .",
        "The study <be> funded by {o} and the {u} .",
        "{p.last} <say> the results <will> help {beneficiary} in {u.country} .",
        "Other scientists <call/pl> the work [important|promising|surprising|careful] but"
        " <warn/pl> that more data <be> needed .",
        "The researchers <collect/pl> samples from {#site:4-60} along the {c.river} river .",
        "{p.first} <thank> {p.poss} colleagues at the {u} and in {c2} .",
        "The project <will> continue until {later_year} .",
    ],
    "travel": [
        "The {c.hotel} in {c} <offer> views of the {c.river} river and the {c.known} .",
        "Visitors to {c} can take a ferry to {c2} in about {#hour:1-9} .",
        "The old town of {c} is best explored on foot .",
        "A double room at the {c.hotel} <cost> {price} a night .",
        "The best time to visit {c} is in {c.event.month} , when the {c.event} takes place .",
        "Many {nat} visitors <travel/pl> to {c} by train from {c2} .",
        "From {c.airport} , buses <run/pl> to the city centre every {minutes} minutes .",
        "Guides in {c} <recommend/pl> a walk along the {c.river} river at sunset .",
    ],
}

# Sentences any document can use, to glue topics together.
GENERIC_TEMPLATES = [
    "\" This is a good day for {c} , \" <say/now> {p} .",
    "The news <be> welcomed by {p} , a {p.role} at {p.org} .",
    "{p} could not be reached for comment .",
    "The {nat} ambassador <visit> {c} on {weekday} and <meet> {p} .",
    "{p} <decline> to comment on the report .",
    "A spokesperson for {p.org} <confirm> the news on {weekday} .",
    "Officials in {c.country} <expect/pl> more details {when} .",
    "The {c.paper} <publish> an interview with {p} on {weekday} .",
]

TOPIC_WEIGHTS = {"company": 5, "city": 4, "person": 4, "product": 3, "event": 3,
                 "sports": 3, "weather": 2, "science": 3, "travel": 2}

# (past, present, future) weights: match reports are never written ahead of
# the match, and profiles and travel notes are not written in the future.
TOPIC_TENSES = {"company": (6, 2, 2), "city": (6, 2, 2), "person": (7, 3, 0),
                "product": (5, 2, 3), "event": (5, 2, 3), "sports": (8, 2, 0),
                "weather": (5, 2, 3), "science": (7, 3, 0), "travel": (3, 7, 0)}
